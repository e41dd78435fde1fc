/**
 * What replicas on one PostgreSQL database coordinate through it, on one
 * connection of each process's own (outside the pool, which hands its
 * connections to whichever query comes):
 *
 * - LISTEN berth_changes: change signals from every process (changes.ts)
 *   reach this process's caches, and each is acknowledged (NOTIFY
 *   berth_acks) once its subscribers ran; the shared advisory lock
 *   MEMBER_LOCKS tells writers whose acknowledgement to wait for.
 *   Notifications sent while the connection is down are lost, so every cache
 *   is flushed when it drops and again once it is back.
 * - Leadership of the scheduled jobs: a session-level advisory lock
 *   (pg_try_advisory_lock), held by this connection for as long as it lives.
 *   The process that holds it runs the jobs; the others try again every
 *   `pollMs`. A holder that dies (or whose connection does) releases it with
 *   its session, so another process takes over within about `pollMs`.
 *
 * On SQLite there is one machine and nothing to elect: `openClusterLink`
 * returns a link whose `lead` starts the jobs at once.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import { ACKS_CHANNEL, CHANGES_CHANNEL, MEMBER_LOCKS, type ChangeSignals } from './changes.js';

/** Advisory lock space of the scheduled jobs' leadership (1-3 are the transaction locks of database.ts, 5 the members of changes.ts). */
const LEADER_LOCKS = 4;

export interface ClusterLinkOptions {
  /** How often a follower tries to take the lead, and the leader checks its connection (default 1 s). */
  pollMs?: number;
  /** The longest wait between reconnection attempts (default 2 s). */
  maxBackoffMs?: number;
}

export interface ClusterLink {
  /**
   * Runs `start` while this process leads (at once without PostgreSQL), and
   * the function it returns when it stops leading. Returns a stop function.
   */
  lead(name: string, start: () => () => void): () => void;
  /** Whether this process currently leads. */
  readonly leading: boolean;
  close(): Promise<void>;
}

/** No database to share: this process is the only one, and leads. */
class LocalLink implements ClusterLink {
  private stops: (() => void)[] = [];
  leading = true;

  lead(_name: string, start: () => () => void): () => void {
    const stop = start();
    this.stops.push(stop);
    return () => {
      this.stops = this.stops.filter((s) => s !== stop);
      stop();
    };
  }

  async close(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
  }
}

interface Job {
  name: string;
  start: () => () => void;
  stop?: () => void;
}

class PostgresLink implements ClusterLink {
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private backoff = 100;
  private readonly jobs = new Set<Job>();
  private ticking = false;
  leading = false;

  constructor(
    private readonly Client: typeof pg.Client,
    private readonly url: string,
    private readonly signals: ChangeSignals,
    private readonly log: Logger,
    private readonly pollMs: number,
    private readonly maxBackoffMs: number,
  ) {}

  async start(): Promise<void> {
    await this.connect();
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    this.timer.unref();
  }

  private connect(): Promise<void> {
    this.connecting ??= this.connectOnce().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connectOnce(): Promise<void> {
    const client = new this.Client({ connectionString: this.url, keepAlive: true, query_timeout: Math.max(5_000, this.pollMs * 5) });
    client.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL) {
        // Subscribers first (synchronously), then the answer the writer waits for.
        const id = this.signals.deliver(n.payload ?? '');
        if (id !== undefined) client.query('SELECT pg_notify($1, $2)', [ACKS_CHANNEL, id]).catch(() => {});
      } else if (n.channel === ACKS_CHANNEL && n.payload) {
        this.signals.acknowledged(n.payload, n.processId);
      }
    });
    // An error before the link adopts the client (between LISTEN and the assignment) must not leave it holding a dead one.
    let lost: Error | null = null;
    client.on('error', (err) => (this.client === client ? this.dropped(client, err) : (lost ??= err)));
    client.on('end', () => (this.client === client ? this.dropped(client, new Error('connection ended')) : (lost ??= new Error('connection ended'))));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
      await client.query(`LISTEN ${ACKS_CHANNEL}`);
      // Listening, this session is a member: writers wait for its acknowledgements from now on.
      await client.query('SELECT pg_advisory_lock_shared($1, 0)', [MEMBER_LOCKS]);
      if (lost) throw lost;
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw err;
    }
    this.client = client;
    this.backoff = 100;
    this.signals.setListening(true);
    // Whatever was signalled before this connection listened is unknown: nothing cached holds.
    this.signals.flush();
  }

  /** The connection is gone: so are its notifications and its lock. */
  private dropped(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = null;
    this.signals.setListening(false);
    this.signals.flush();
    if (this.leading) {
      this.log.warn({ err }, 'lost the database connection that held the scheduled jobs: stopping them');
      this.stopJobs();
    } else if (!this.closed) {
      this.log.warn({ err }, 'lost the database connection that listens for changes; flushing caches and reconnecting');
    }
    client.end().catch(() => {});
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      if (!this.client) {
        try {
          await this.connect();
        } catch (err) {
          this.log.warn({ err, retryMs: this.backoff }, 'could not reconnect the change listener');
          await new Promise((r) => setTimeout(r, this.backoff).unref());
          this.backoff = Math.min(this.maxBackoffMs, this.backoff * 2);
          return;
        }
      }
      const client = this.client;
      if (!client) return;
      if (this.leading) {
        // A query on the connection shows it (and so the lock) is still there.
        await client.query('SELECT 1').catch((err: Error) => this.dropped(client, err));
      } else if (this.jobs.size > 0) {
        const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, 0) AS ok', [LEADER_LOCKS]).catch((err: Error) => {
          this.dropped(client, err);
          return null;
        });
        if (r?.rows[0]?.ok && this.client === client && !this.closed) {
          this.leading = true;
          this.log.info({ jobs: [...this.jobs].map((j) => j.name) }, 'this replica now runs the scheduled jobs');
          for (const job of this.jobs) job.stop = job.start();
        }
      }
    } finally {
      this.ticking = false;
    }
  }

  private stopJobs(): void {
    this.leading = false;
    for (const job of this.jobs) {
      job.stop?.();
      job.stop = undefined;
    }
  }

  lead(name: string, start: () => () => void): () => void {
    const job: Job = { name, start };
    this.jobs.add(job);
    if (this.leading) job.stop = start();
    else void this.tick();
    return () => {
      this.jobs.delete(job);
      job.stop?.();
      job.stop = undefined;
      // Nothing left to lead (a shutdown draining its requests): let another replica take the jobs now.
      if (this.jobs.size === 0 && this.leading) {
        this.leading = false;
        const client = this.client;
        void client?.query('SELECT pg_advisory_unlock($1, 0)', [LEADER_LOCKS]).catch((err: Error) => this.dropped(client, err));
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.connecting?.catch(() => {});
    if (this.leading) this.stopJobs();
    this.jobs.clear();
    const client = this.client;
    this.client = null;
    this.signals.setListening(false);
    // Ending the session releases the lock at once: the next replica need not wait for a timeout.
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }
}

/** The link for a database: PostgreSQL's when `url` names one, else a process alone. */
export async function openClusterLink(url: string | undefined, signals: ChangeSignals, log: Logger, opts: ClusterLinkOptions = {}): Promise<ClusterLink> {
  if (!url || !/^postgres(ql)?:\/\//.test(url)) return new LocalLink();
  const pg = (await import('pg')).default;
  const link = new PostgresLink(pg.Client, url, signals, log, opts.pollMs ?? 1000, opts.maxBackoffMs ?? 2000);
  await link.start();
  return link;
}
