/**
 * Change signals: a committed write that makes some process's cached answers
 * wrong says so here, by topic, and every process serving the database drops
 * what it cached under that topic before the write is acknowledged.
 *
 * - In this process the subscribers run at once (after the write committed).
 * - On PostgreSQL every serving thread of every replica is a *member*: its
 *   link (src/metadata/cluster.ts) LISTENs on `berth_changes` and holds a
 *   shared session-level advisory lock (MEMBER_LOCKS), so pg_locks lists the
 *   members' sessions. The writer reads that list, sends
 *   `NOTIFY berth_changes, 'topic id'`, and waits until every member has
 *   answered `NOTIFY berth_acks, 'id'`, which a member sends only after its
 *   subscribers ran. So once `changed` returns, no replica answers from what
 *   it cached before. A member that does not answer within ACK_TIMEOUT_MS
 *   (a process stopped in a debugger, a partitioned host whose session
 *   PostgreSQL still holds) is waited for no longer; its own caches' short
 *   lifetimes bound what it may still answer.
 * - When a member's listening connection drops, notifications sent meanwhile
 *   are lost, so it flushes everything (topic `*`) when it drops and again
 *   when it is back (and being gone, it is no member while it is away).
 * - A process that does not listen (the CLI) does the same from a short-lived
 *   session of its own.
 * - On SQLite (one machine) a process's other connections already see
 *   commits through data_version; the local subscribers are all there is.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sql } from './kysely.js';
import type { Database } from './schema.js';

/** What a write can make stale. `*` reaches every subscriber. */
export type ChangeTopic = 'credentials' | 'keys';

export const CHANGES_CHANNEL = 'berth_changes';
export const ACKS_CHANNEL = 'berth_acks';
/** Advisory lock space (shared, session-level) whose holders are the members that must acknowledge. */
export const MEMBER_LOCKS = 5;

/** How long a writer waits for the members' acknowledgements before it answers anyway. */
const ACK_TIMEOUT_MS = 2_000;

/** What a writer needs of a PostgreSQL client (pg.Client, connected). */
export interface NotifySession {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  on(event: 'notification', fn: (n: { channel: string; payload?: string; processId: number }) => void): unknown;
  end(): Promise<void>;
}

/** The members of this database: the sessions holding MEMBER_LOCKS (they listen). The same query as in `changed`, for a raw session. */
const MEMBERS_SQL =
  "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = 0 AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

interface Waiting {
  pending: Set<number>;
  done: () => void;
}

export class ChangeSignals {
  private readonly subscribers = new Map<ChangeTopic | '*', Set<() => void>>();
  private readonly waiting = new Map<string, Waiting>();
  /** Set by the link while it is connected and a member: signals are sent and acknowledged through it. */
  private listening = false;
  /** Signals sent and received by this process, flushes, and writers that stopped waiting for a member. */
  readonly stats = { sent: 0, received: 0, flushes: 0, unacknowledged: 0 };

  /**
   * `postgres`: the pool signals are sent on; none on SQLite. `session`:
   * opens a connection of its own, for a process that does not listen.
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
   * acknowledged. Local caches are dropped at once; every other member has
   * dropped its own when this returns.
   */
  async changed(topic: ChangeTopic): Promise<void> {
    this.run(topic);
    if (!this.postgres) return;
    this.stats.sent++;
    const id = randomUUID();
    const payload = `${topic} ${id}`;
    if (!this.listening) {
      if (this.session) return this.sendFromSession(id, payload);
      await sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${payload})`.execute(this.postgres);
      return;
    }
    // The members are read before the signal goes: one that joins after it starts with nothing cached.
    const members = await sql<{ pid: number }>`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = ${MEMBER_LOCKS} AND objid = 0 AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`.execute(this.postgres);
    const acked = this.expect(id, members.rows.map((r) => Number(r.pid)));
    try {
      await sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${payload})`.execute(this.postgres);
    } catch (err) {
      this.waiting.get(id)?.done();
      throw err;
    }
    await acked;
  }

  /** Waits (at most ACK_TIMEOUT_MS) until each of `pids` acknowledged `id`. */
  private expect(id: string, pids: number[]): Promise<void> {
    if (pids.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.stats.unacknowledged++;
        finish();
      }, ACK_TIMEOUT_MS);
      timer.unref();
      const finish = () => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve();
      };
      this.waiting.set(id, { pending: new Set(pids), done: finish });
    });
  }

  /** From a session of its own (this process is no member): the same wait, on that session. */
  private async sendFromSession(id: string, payload: string): Promise<void> {
    const session = await this.session!();
    try {
      await session.query(`LISTEN ${ACKS_CHANNEL}`);
      const members = (await session.query(MEMBERS_SQL, [MEMBER_LOCKS])).rows as { pid: number }[];
      const acked = this.expect(
        id,
        members.map((r) => Number(r.pid)),
      );
      session.on('notification', (n) => {
        if (n.channel === ACKS_CHANNEL && n.payload === id) this.acknowledged(id, n.processId);
      });
      await session.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, payload]);
      await acked;
    } finally {
      await session.end().catch(() => {});
    }
  }

  /** A member's acknowledgement of signal `id` (from the link, or a writer's own session). */
  acknowledged(id: string, pid: number): void {
    const w = this.waiting.get(id);
    if (!w) return;
    w.pending.delete(pid);
    if (w.pending.size === 0) w.done();
  }

  /**
   * A signal that arrived on the link: the subscribers run now (ours ran
   * when we sent it). Returns the id to acknowledge.
   */
  deliver(payload: string): string | undefined {
    this.stats.received++;
    const [topic, id] = payload.split(' ');
    if (id !== undefined && this.waiting.has(id)) return id;
    if (topic === 'credentials' || topic === 'keys') this.run(topic);
    else this.flush();
    return id;
  }

  /** Drops every cached answer: notifications may have been missed. */
  flush(): void {
    this.stats.flushes++;
    for (const set of this.subscribers.values()) for (const fn of set) fn();
  }

  /** The link tells whether this process currently is a member (connected, listening). */
  setListening(on: boolean): void {
    this.listening = on;
    // Acknowledgements to this thread's writers would come through the link: without it, stop waiting.
    if (!on) for (const w of [...this.waiting.values()]) w.done();
  }

  private run(topic: ChangeTopic): void {
    for (const fn of this.subscribers.get(topic) ?? []) fn();
    for (const fn of this.subscribers.get('*') ?? []) fn();
  }
}
