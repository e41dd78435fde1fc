/**
 * The persisted notification queue: distribution's notification endpoints
 * (notifications/endpoint.go) with the in-memory queue replaced by two
 * tables, so events survive restarts and endpoint outages.
 *
 * - `emit` writes one `notification_queue` row per (event, endpoint that does
 *   not ignore it), all in one transaction.
 * - One delivery loop per enabled endpoint, in every process. A loop delivers
 *   only while it holds the endpoint's lease in `notification_endpoints`
 *   (lease_owner, lease_until), so replicas sharing a database never deliver
 *   one endpoint concurrently; a lease not renewed (the process died) expires
 *   and another process takes over.
 * - The lease holder POSTs the oldest rows in id order as one envelope and
 *   deletes them only after the endpoint accepted them, so delivery is at
 *   least once and in order. A failed batch is retried as it was.
 * - Retries follow distribution's breaker (go-events Breaker): retry at once
 *   until `threshold` consecutive failures, then wait `backoff` before each
 *   further attempt. Events are never dropped.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { NotificationEndpoint } from '../config/index.js';
import type { Database } from '../metadata/schema.js';
import { EVENTS_MEDIA_TYPE, type EventSink, type RegistryEvent } from './types.js';
import { redactUrl, redactUrls } from './redact.js';

export type EndpointConfig = Pick<NotificationEndpoint, 'name' | 'disabled' | 'url' | 'headers' | 'timeout' | 'threshold' | 'backoff' | 'ignoredmediatypes' | 'ignore'>;

export interface NotificationQueueOptions {
  db: Kysely<Database>;
  endpoints: EndpointConfig[];
  /** Identifies this process in events (distribution's SourceRecord). Filled into events that have none. */
  source: { addr: string; instanceID: string };
  log: Logger;
  /** How often an idle loop looks for rows written by other processes (ms). */
  pollMs?: number;
  /** How long a lease lasts without renewal (ms); it is renewed every third of that. */
  leaseMs?: number;
  /** Most events in one envelope. */
  maxBatch?: number;
  /** Lease owner id; defaults to the source's instanceID. */
  owner?: string;
  /** Runs a write as this process's one writer at a time (MetadataStore.writing). */
  writing?: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * The time (ms) leases and retry times are reckoned in: the database's
   * clock (MetadataStore.clock), so processes on several machines agree on
   * when a lease has expired. Defaults to this process's clock.
   */
  clock?: () => Promise<number>;
}

export interface EndpointStatus {
  name: string;
  pending: number;
  failures: number;
  lastError: string | null;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseUntil: number;
}

type Delay = { ms: number; wakeable: boolean };

/** Rows per INSERT (3 parameters each, well under both engines' limits). */
const INSERT_CHUNK = 1000;

export class NotificationQueue implements EventSink {
  private readonly db: Kysely<Database>;
  private readonly writing: <T>(fn: () => Promise<T>) => Promise<T>;
  private readonly source: { addr: string; instanceID: string };
  private readonly log: Logger;
  private readonly filters: { name: string; mediaTypes: Set<string>; actions: Set<string> }[];
  private readonly workers = new Map<string, EndpointWorker>();
  private started = false;
  private closed = false;

  constructor(opts: NotificationQueueOptions) {
    this.db = opts.db;
    this.writing = opts.writing ?? ((fn) => fn());
    this.source = opts.source;
    this.log = opts.log;
    const enabled = opts.endpoints.filter((e) => !e.disabled);
    const names = new Set<string>();
    for (const e of enabled) {
      if (names.has(e.name)) throw new Error(`notifications: two enabled endpoints are named ${JSON.stringify(e.name)}; names identify queues and must be unique`);
      names.add(e.name);
    }
    this.filters = enabled.map((e) => ({
      name: e.name,
      // distribution merges the older `ignoredmediatypes` into ignore.mediatypes.
      mediaTypes: new Set([...e.ignore.mediatypes, ...e.ignoredmediatypes]),
      actions: new Set(e.ignore.actions),
    }));
    const settings = {
      pollMs: opts.pollMs ?? 1000,
      leaseMs: opts.leaseMs ?? 10_000,
      maxBatch: opts.maxBatch ?? 100,
      owner: opts.owner ?? opts.source.instanceID,
      writing: this.writing,
      clock: opts.clock ?? (async () => Date.now()),
    };
    for (const e of enabled) this.workers.set(e.name, new EndpointWorker(this.db, e, settings, this.log.child({ endpoint: e.name })));
  }

  /** Creates the endpoints' rows and starts the delivery loops. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const w of this.workers.values()) {
      this.log.info({ endpoint: w.config.name, url: redactUrl(w.config.url), timeout: w.config.timeout, threshold: w.config.threshold, backoff: w.config.backoff }, `configuring notification endpoint ${w.config.name}`);
      await w.ensureRow();
    }
    // Queues of endpoints no longer configured are kept (a config change should not lose events) but said.
    const orphans = await this.db
      .selectFrom('notification_queue')
      .select(['endpoint', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('endpoint')
      .execute();
    for (const o of orphans) {
      if (!this.workers.has(o.endpoint)) this.log.warn({ endpoint: o.endpoint, pending: Number(o.n) }, `notification endpoint ${o.endpoint} is not configured (or disabled) but has undelivered events; they are kept`);
    }
    for (const w of this.workers.values()) w.start();
  }

  async emit(events: RegistryEvent[]): Promise<void> {
    if (events.length === 0 || this.filters.length === 0) return;
    const t = Date.now();
    const rows: { endpoint: string; payload: string; created_at: number }[] = [];
    for (const event of events) {
      const e: RegistryEvent = event.source ? event : { ...event, source: this.source };
      let payload: string | undefined;
      for (const f of this.filters) {
        if ((e.target.mediaType !== undefined && f.mediaTypes.has(e.target.mediaType)) || f.actions.has(e.action)) continue;
        payload ??= JSON.stringify(e);
        rows.push({ endpoint: f.name, payload, created_at: t });
      }
    }
    if (rows.length === 0) return;
    // One statement is atomic by itself; only a very large emit needs a transaction.
    await this.writing(async () => {
      if (rows.length <= INSERT_CHUNK) await this.db.insertInto('notification_queue').values(rows).execute();
      else
        await this.db.transaction().execute(async (trx) => {
          for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto('notification_queue').values(rows.slice(i, i + INSERT_CHUNK)).execute();
        });
    });
    if (this.closed) return;
    for (const r of rows) this.workers.get(r.endpoint)?.wake();
  }

  /** Per configured endpoint: queued events and delivery state (for status pages and tests). */
  async status(): Promise<EndpointStatus[]> {
    const names = [...this.workers.keys()];
    if (names.length === 0) return [];
    const counts = new Map<string, number>();
    for (const r of await this.db
      .selectFrom('notification_queue')
      .select(['endpoint', (eb) => eb.fn.countAll<number>().as('n')])
      .where('endpoint', 'in', names)
      .groupBy('endpoint')
      .execute())
      counts.set(r.endpoint, Number(r.n));
    const states = new Map((await this.db.selectFrom('notification_endpoints').selectAll().where('endpoint', 'in', names).execute()).map((r) => [r.endpoint, r]));
    return names.map((name) => {
      const s = states.get(name);
      return {
        name,
        pending: counts.get(name) ?? 0,
        failures: Number(s?.failures ?? 0),
        lastError: s?.last_error ?? null,
        nextAttemptAt: Number(s?.next_attempt_at ?? 0),
        leaseOwner: s?.lease_owner ?? null,
        leaseUntil: Number(s?.lease_until ?? 0),
      };
    });
  }

  /**
   * Stops the loops: an in-flight POST finishes (bounded by its timeout) and
   * its outcome is recorded; then the leases are released so another process
   * (or the next start) takes over at once. Queued rows stay for later.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
  }
}

export interface WorkerSettings {
  pollMs: number;
  leaseMs: number;
  maxBatch: number;
  owner: string;
  writing: <T>(fn: () => Promise<T>) => Promise<T>;
  clock: () => Promise<number>;
  /**
   * Each row is a whole JSON document, POSTed alone as application/json (a
   * Hub-style repository webhook), instead of rows batched into one
   * distribution envelope.
   */
  single?: boolean;
}

/** The delivery loop of one endpoint (exported for the Hub's repository webhooks, which reuse its lease and backoff). */
export class EndpointWorker {
  private stopping = false;
  private running: Promise<void> | undefined;
  /** Set by wake(); a loop that was busy when woken does not sleep next time. */
  private woken = false;
  private interrupt: (() => void) | undefined;
  private holding = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The batch being delivered: retried unchanged until it is accepted or the lease is lost. */
  private batch: { ids: number[]; body: string } | undefined;
  private lastWarnAt = 0;
  private readonly headers: [string, string][];
  /** The endpoint's URL without user info, which fetch refuses; the user info goes as Basic auth (as distribution's Go client sends it). */
  private readonly target: string;

  constructor(
    private readonly db: Kysely<Database>,
    readonly config: EndpointConfig,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {
    this.headers = [];
    for (const [name, values] of Object.entries(config.headers)) for (const v of values) this.headers.push([name, v]);
    const url = new URL(config.url);
    if (url.username || url.password) {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      // A configured Authorization header wins, as it would in Go.
      if (!this.headers.some(([name]) => name.toLowerCase() === 'authorization')) this.headers.push(['Authorization', `Basic ${Buffer.from(credentials).toString('base64')}`]);
      url.username = '';
      url.password = '';
    }
    this.target = url.toString();
  }

  private get name(): string {
    return this.config.name;
  }

  async ensureRow(): Promise<void> {
    await this.settings.writing(() =>
      this.db
        .insertInto('notification_endpoints')
        .values({ endpoint: this.name, failures: 0, next_attempt_at: 0, last_error: null, lease_owner: null, lease_until: 0 })
        .onConflict((oc) => oc.column('endpoint').doNothing())
        .execute(),
    );
  }

  start(): void {
    this.running ??= this.run();
  }

  wake(): void {
    this.woken = true;
    this.interrupt?.();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.interrupt?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let delay: Delay;
      try {
        delay = await this.step();
      } catch (err) {
        // The database is unreachable or similar: keep the rows, try again later.
        this.log.error({ err }, 'notification delivery loop error');
        this.batch = undefined;
        delay = { ms: this.settings.pollMs, wakeable: false };
      }
      if (delay.ms > 0 && !this.stopping) await this.sleep(delay);
    }
    await this.release().catch((err: unknown) => this.log.warn({ err }, 'could not release the notification lease'));
  }

  private sleep({ ms, wakeable }: Delay): Promise<void> {
    if (wakeable && this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.interrupt = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      // Stop always interrupts; an emit only interrupts an idle wait, never a backoff.
      this.interrupt = () => {
        if (this.stopping || (wakeable && this.woken)) done();
      };
    });
  }

  /** One round of the loop; returns how long to wait before the next. */
  private async step(): Promise<Delay> {
    this.woken = false;
    const idle: Delay = { ms: this.settings.pollMs, wakeable: true };
    if (!this.holding) {
      const any = await this.db.selectFrom('notification_queue').select('id').where('endpoint', '=', this.name).limit(1).executeTakeFirst();
      if (!any) return idle;
      if (!(await this.acquire())) return { ms: this.settings.pollMs, wakeable: false };
    }
    const state = await this.db.selectFrom('notification_endpoints').selectAll().where('endpoint', '=', this.name).executeTakeFirst();
    if (!state || state.lease_owner !== this.settings.owner) {
      this.lost();
      return { ms: 0, wakeable: false };
    }
    const wait = Number(state.next_attempt_at) - (await this.settings.clock());
    if (wait > 0) return { ms: wait, wakeable: false };

    if (!this.batch) {
      const rows = await this.db
        .selectFrom('notification_queue')
        .select(['id', 'payload'])
        .where('endpoint', '=', this.name)
        .orderBy('id')
        .limit(this.settings.single ? 1 : this.settings.maxBatch)
        .execute();
      if (rows.length === 0) {
        await this.release();
        return idle;
      }
      // The payloads are already JSON: the envelope is assembled, not re-serialised.
      this.batch = { ids: rows.map((r) => Number(r.id)), body: this.settings.single ? rows[0]!.payload : `{"events":[${rows.map((r) => r.payload).join(',')}]}` };
    }
    const batch = this.batch;
    const error = await this.post(batch.body);
    if (error === null) {
      // Single statements, no transaction: a crash between them at worst redelivers or keeps a stale failure count.
      await this.settings.writing(async () => {
        for (let i = 0; i < batch.ids.length; i += 500) await this.db.deleteFrom('notification_queue').where('id', 'in', batch.ids.slice(i, i + 500)).execute();
        if (Number(state.failures) > 0) {
          await this.db.updateTable('notification_endpoints').set({ failures: 0, last_error: null, next_attempt_at: 0 }).where('endpoint', '=', this.name).execute();
        }
      });
      this.batch = undefined;
      if (Number(state.failures) >= this.config.threshold) this.log.info({ failures: Number(state.failures) }, `notification endpoint ${this.name} recovered`);
      else this.log.debug({ events: batch.ids.length }, 'notifications delivered');
      return { ms: 0, wakeable: false };
    }
    const failures = Number(state.failures) + 1;
    const now = await this.settings.clock();
    // go-events Breaker: immediate retries below the threshold, then one attempt per backoff.
    const next = failures >= this.config.threshold ? now + this.config.backoff : now;
    await this.settings.writing(() =>
      this.db
        .updateTable('notification_endpoints')
        .set({ failures, last_error: error.slice(0, 1000), next_attempt_at: next })
        .where('endpoint', '=', this.name)
        .execute(),
    );
    if (failures === this.config.threshold || (failures > this.config.threshold && now - this.lastWarnAt >= 60_000)) {
      this.lastWarnAt = now;
      this.log.warn({ failures, error, pending: batch.ids.length, url: redactUrl(this.config.url) }, `notification endpoint ${this.name} is failing (${failures} consecutive errors), backing off ${this.config.backoff}ms between attempts; events are kept`);
    } else {
      this.log.debug({ failures, error }, 'notification delivery failed, retrying');
    }
    return { ms: 0, wakeable: false };
  }

  /** POSTs one envelope; null when accepted, else why not. */
  private async post(body: string): Promise<string | null> {
    const headers = new Headers();
    headers.set('Content-Type', this.settings.single ? 'application/json' : EVENTS_MEDIA_TYPE);
    for (const [name, value] of this.headers) headers.append(name, value);
    try {
      const res = await fetch(this.target, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.config.timeout), redirect: 'follow' });
      await res.body?.cancel().catch(() => {});
      // As distribution's httpSink: any 2xx or 3xx (after redirects) is accepted.
      if (res.status >= 200 && res.status < 400) return null;
      return `response status ${res.status} ${res.statusText} unaccepted`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError') return `no response within ${this.config.timeout}ms`;
      // The message may quote the endpoint's URL, credentials and all; it is logged and stored.
      return `error posting: ${redactUrls(e.cause?.code ?? e.cause?.message ?? e.message)}`;
    }
  }

  private async acquire(): Promise<boolean> {
    const now = await this.settings.clock();
    const { owner, leaseMs } = this.settings;
    // One conditional UPDATE: atomic in SQLite (writes are serialised) and in
    // PostgreSQL (a concurrent updater re-checks the WHERE on the new row version).
    const r = await this.settings.writing(() =>
      this.db
        .updateTable('notification_endpoints')
        .set({ lease_owner: owner, lease_until: now + leaseMs })
        .where('endpoint', '=', this.name)
        .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]))
        .executeTakeFirst(),
    );
    if (Number(r.numUpdatedRows) !== 1) return false;
    this.holding = true;
    // Another process may have delivered part of what this one last read.
    this.batch = undefined;
    this.heartbeat = setInterval(() => void this.renew(), Math.max(50, Math.floor(leaseMs / 3)));
    this.heartbeat.unref();
    this.log.debug('notification lease acquired');
    return true;
  }

  private async renew(): Promise<void> {
    if (!this.holding) return;
    try {
      const until = (await this.settings.clock()) + this.settings.leaseMs;
      const r = await this.settings.writing(() =>
        this.db
          .updateTable('notification_endpoints')
          .set({ lease_until: until })
          .where('endpoint', '=', this.name)
          .where('lease_owner', '=', this.settings.owner)
          .executeTakeFirst(),
      );
      if (Number(r.numUpdatedRows) !== 1 && this.holding) {
        this.log.warn('notification lease lost to another process');
        this.lost();
      }
    } catch (err) {
      this.log.warn({ err }, 'could not renew the notification lease');
    }
  }

  private lost(): void {
    this.holding = false;
    this.batch = undefined;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private async release(): Promise<void> {
    if (!this.holding) return;
    this.lost();
    await this.settings.writing(() =>
      this.db
        .updateTable('notification_endpoints')
        .set({ lease_owner: null, lease_until: 0 })
        .where('endpoint', '=', this.name)
        .where('lease_owner', '=', this.settings.owner)
        .execute(),
    );
  }
}

/** A fresh instance id, as distribution's (a random UUID that changes on every start). */
export function newInstanceId(): string {
  return randomUUID();
}
