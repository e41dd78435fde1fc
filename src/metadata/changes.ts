/**
 * Change signals: a committed write that makes some process's cached answers
 * wrong says so here, by topic, and every process serving the database drops
 * what it cached under that topic.
 *
 * - In this process the subscribers run at once (after the write committed).
 * - On PostgreSQL the signal also goes out as `NOTIFY berth_changes, topic`;
 *   each serving process LISTENs on a connection of its own
 *   (src/metadata/cluster.ts) and feeds what arrives back in through
 *   `deliver`. The writer waits (briefly) until its own notification has come
 *   back through PostgreSQL before the write is acknowledged: PostgreSQL
 *   signals every listener at the same commit, so by then the others have
 *   been told too.
 * - When the listening connection drops, notifications sent meanwhile are
 *   lost, so the link flushes everything (topic `*`) when it drops and again
 *   when it is back.
 * - On SQLite (one machine) a process's other connections already see
 *   commits through data_version; the local subscribers are all there is.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** What a write can make stale. `*` reaches every subscriber. */
export type ChangeTopic = 'credentials' | 'keys';

export const CHANGES_CHANNEL = 'berth_changes';

/** What sendAndWait needs of a PostgreSQL client (pg.Client, connected). */
export interface NotifySession {
  query(text: string, values?: unknown[]): Promise<unknown>;
  on(event: 'notification', fn: (n: { payload?: string }) => void): unknown;
  end(): Promise<void>;
}

/** How long a writer waits for its own notification to come back before acknowledging anyway. */
const ECHO_TIMEOUT_MS = 2_000;

export class ChangeSignals {
  private readonly subscribers = new Map<ChangeTopic | '*', Set<() => void>>();
  private readonly echoes = new Map<string, () => void>();
  /** Set by the LISTEN link while it is connected: signals sent now come back through it. */
  private listening = false;
  /** Signals sent and received by this process (for tests and logs). */
  readonly stats = { sent: 0, received: 0, flushes: 0 };

  /**
   * `postgres`: the pool signals are sent on (pg_notify in autocommit, so
   * each goes out at once); none on SQLite. `session`: opens a connection of
   * its own, for a process that does not listen (the CLI): the signal is sent
   * from a session that listens too, and comes back to it like to every
   * other listener.
   */
  constructor(
    private readonly postgres?: Kysely<Database>,
    private readonly session?: () => Promise<NotifySession>,
  ) {}

  /** Calls `fn` whenever `topic` changed anywhere (and for `*`: a flush of everything). Returns an unsubscribe. */
  subscribe(topic: ChangeTopic | '*', fn: () => void): () => void {
    let set = this.subscribers.get(topic);
    if (!set) this.subscribers.set(topic, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * Says that `topic` changed: call after the write committed, before it is
   * acknowledged. Local caches are dropped at once; other processes are told
   * through PostgreSQL.
   */
  async changed(topic: ChangeTopic): Promise<void> {
    this.run(topic);
    if (!this.postgres) return;
    this.stats.sent++;
    if (!this.listening && this.session) return this.sendAndWait(`${topic} ${randomUUID()}`);
    const id = randomUUID();
    let echoed: Promise<void> | undefined;
    if (this.listening) {
      echoed = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.echoes.delete(id);
          resolve();
        }, ECHO_TIMEOUT_MS);
        timer.unref();
        this.echoes.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    try {
      await sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${`${topic} ${id}`})`.execute(this.postgres);
    } catch (err) {
      this.echoes.delete(id);
      throw err;
    }
    await echoed;
  }

  /** From a session of its own that listens: the signal is acknowledged once it came back. */
  private async sendAndWait(payload: string): Promise<void> {
    const session = await this.session!();
    try {
      await session.query(`LISTEN ${CHANGES_CHANNEL}`);
      const back = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ECHO_TIMEOUT_MS);
        timer.unref();
        session.on('notification', (n: { payload?: string }) => {
          if (n.payload === payload) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      await session.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]);
      await back;
    } finally {
      await session.end().catch(() => {});
    }
  }

  /** A notification that arrived on the LISTEN link. */
  deliver(payload: string): void {
    this.stats.received++;
    const [topic, id] = payload.split(' ');
    const echo = id !== undefined ? this.echoes.get(id) : undefined;
    if (echo) {
      // Our own: the local subscribers ran when it was sent.
      this.echoes.delete(id!);
      echo();
      return;
    }
    if (topic === 'credentials' || topic === 'keys') this.run(topic);
    else this.flush();
  }

  /** Drops every cached answer: notifications may have been missed. */
  flush(): void {
    this.stats.flushes++;
    for (const set of this.subscribers.values()) for (const fn of set) fn();
    // Nobody will answer the writers waiting for an echo now.
    for (const done of this.echoes.values()) done();
    this.echoes.clear();
  }

  /** The LISTEN link tells whether notifications currently reach this process. */
  setListening(on: boolean): void {
    this.listening = on;
  }

  private run(topic: ChangeTopic): void {
    for (const fn of this.subscribers.get(topic) ?? []) fn();
    for (const fn of this.subscribers.get('*') ?? []) fn();
  }
}
