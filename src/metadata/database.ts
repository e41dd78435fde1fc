/**
 * The metadata database's handle, shared by every query module of this
 * folder (registry.ts, collection.ts, and the Hub's accounts.ts,
 * credentials.ts, keys.ts, discovery.ts): opening either engine (SQLite
 * embedded, PostgreSQL at scale) and migrating it, one writer at a time
 * (the write gate) or conflicts retried (PostgreSQL), the locks in their one
 * order, the database's clock, reads cached by data_version, and queries
 * compiled once. It holds no query of any table: those live in the modules.
 */
import type { Compilable, CompiledQuery, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, Transaction, UnknownRow } from 'kysely';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from './kysely.js';
import { createHash } from 'node:crypto';
import type { Database } from './schema.js';
import type { WriteGate } from './gate.js';
import { migrationProvider, type Dialect } from './migrations.js';
import { ChangeSignals, type NotifySession } from './changes.js';

export interface MetadataOptions {
  /** `postgres://…` selects PostgreSQL; otherwise `sqlitePath` (or `:memory:`) is used. */
  url?: string;
  sqlitePath?: string;
  /** SQLite: taken before every write, shared with this process's other serving threads. */
  writeGate?: WriteGate;
  /**
   * SQLite: the log size (pages) at which a commit runs a checkpoint itself
   * (SQLite's default is 1000). Raised while a WalCheckpointer keeps the log
   * short from its own thread.
   */
  walAutocheckpoint?: number;
  /** The visibility of repositories created from now on (the Hub's auth.accounts.defaultvisibility); default 'public'. */
  newRepositoryVisibility?: 'public' | 'private';
}

/** A database handle, or a transaction on it: what a query runs on. */
export type Db = Kysely<Database> | Transaction<Database>;

/** This process's clock: used only on SQLite, whose processes share one machine (and its clock). */
export const now = () => Date.now();

/** PostgreSQL's answers to a lock cycle (deadlock_detected) and to a serialization failure: the transaction may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
/** Attempts of a write transaction that keeps meeting a retryable conflict before the error reaches the caller. */
export const MAX_WRITE_ATTEMPTS = 10;

/**
 * Runs `attempt` (a whole transaction, or one statement) again when
 * PostgreSQL aborted it with a deadlock or a serialization failure, after a
 * short random wait that doubles each time (2–4 ms, 4–8 ms, … up to 250–500 ms),
 * so two transactions that collided do not collide again in step.
 * Everything it runs must be safe to run again: it was rolled back.
 */
export async function retryConflicts<T>(attempt: () => Promise<T>, attempts = MAX_WRITE_ATTEMPTS): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (n >= attempts || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      const base = Math.min(250, 2 ** n);
      await new Promise((r) => setTimeout(r, base + Math.random() * base));
    }
  }
}

/**
 * Keys of PostgreSQL's transaction-level advisory locks: (1, key) for a
 * repository, (2, key) for a blob. A key is 32 bits of a hash of the name or
 * digest; two names sharing a key only wait for each other needlessly.
 */
const REPOSITORY_LOCKS = 1;
const BLOB_LOCKS = 2;
/** PostgreSQL: the advisory lock taken alone to create a collection's row, so two processes asked at once start one run. */
const GC_RUN_LOCKS = 3;
function lockKey(text: string): number {
  return createHash('sha256').update(text).digest().readInt32BE(0);
}
function sortedKeys(texts: Iterable<string>): number[] {
  return [...new Set([...texts].map(lockKey))].sort((a, b) => a - b);
}

/** SQLite: what the synchronous transactions (writeNow) need of the connection under Kysely. */
interface SqliteHandle {
  /** A prepared statement, cached by its text (shared with Kysely's queries). */
  prepare(text: string): { reader: boolean; all(parameters: readonly unknown[]): unknown[]; run(parameters: readonly unknown[]): unknown };
  /** Runs `fn` in a BEGIN IMMEDIATE transaction: committed when it returns, rolled back when it throws. */
  immediate<T>(fn: () => T): T;
  /**
   * Inside a transaction: runs `fn` under a savepoint. Returns its value, or
   * what it threw once its writes are undone. Throws, for the transaction to
   * be rolled back, only when its writes cannot be undone alone: SQLite
   * ended the whole transaction, or the savepoint could not be rolled back.
   */
  savepoint<T>(fn: () => T): { value: T } | { error: unknown };
  /** Rolls back the open transaction. */
  rollback(): void;
  /** Whether a transaction is open on the connection (better-sqlite3 would nest a savepoint in it). */
  inTransaction(): boolean;
  /** A read's first column as bare values, no row objects. */
  column(text: string, parameters: readonly unknown[]): unknown[];
}

/** Thrown inside a writeNow body to roll its transaction back; writeNow then returns its `rolledBack` value. */
export const ROLL_BACK = Symbol('roll back');

/** A writeNow body waiting for its batch's transaction. */
interface NowJob {
  fn: () => unknown;
  rolledBack: unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

interface CompiledHot {
  compiled: CompiledQuery;
  /** For each compiled parameter, the argument it takes, or -1 for a constant of the query. */
  positions: number[];
}

/**
 * Counts statements that may write. Within one process every statement runs
 * on one connection, and a transaction holds it until commit, so a reader can
 * never see the count before a write it then reads the result of.
 */
class WriteCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    if (args.node.kind !== 'SelectQueryNode') this.count++;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

/** What connect() opened: the handle's parts, each engine's own. */
export interface Connection {
  db: Kysely<Database>;
  dialect: Dialect;
  /** SQLite's data_version (changes when another connection commits) and our own write count. */
  changes?: { dataVersion: () => number; writes: WriteCounter };
  gate?: WriteGate;
  /** SQLite: the connection under Kysely, for the transactions run synchronously (writeNow). */
  sqlite?: SqliteHandle;
  /** PostgreSQL: a new connection outside the pool (change signals from a process that does not listen). */
  session?: () => Promise<NotifySession>;
}

/**
 * The one handle (MetadataStore is this handle with the registry's and the
 * collector's queries on it). Its members marked "query modules" are there
 * for the modules of this folder, not for callers outside it.
 */
export class MetadataDatabase {
  private readonly hotQueries = new Map<string, CompiledHot>();
  private readonly readCache = new Map<string, { generation: string; value: unknown }>();
  /** writeNow bodies waiting for this thread's next turn to write. */
  private nowBatch: NowJob[] | null = null;

  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** SQLite: whether writeNow can run (a synchronous transaction on the connection). */
  readonly canWriteNow: boolean;
  private readonly changes?: Connection['changes'];
  private readonly gate?: WriteGate;
  private readonly sqlite?: SqliteHandle;
  /**
   * Writes that make cached answers stale say so here (changes.ts): this
   * process's caches at once, every other process through PostgreSQL's NOTIFY.
   */
  readonly signals: ChangeSignals;

  protected constructor(c: Connection) {
    this.db = c.db;
    this.signals = new ChangeSignals(c.dialect === 'postgres' ? c.db : undefined, c.session);
    this.dialect = c.dialect;
    this.changes = c.changes;
    this.gate = c.gate;
    this.sqlite = c.sqlite;
    this.canWriteNow = c.sqlite !== undefined;
  }

  /**
   * Caches a read until anything in the database changes: a commit by any
   * other process (SQLite's data_version) or a write by this one. Manifest
   * and blob-existence lookups, the hottest requests, then cost no query at
   * all under a read load. PostgreSQL reads are not cached. Public: the
   * edge caches the access decision's facts the same way.
   */
  async cachedRead<T>(key: string, load: () => Promise<T>): Promise<T> {
    if (!this.changes) return load();
    const generation = `${this.changes.dataVersion()}:${this.changes.writes.count}`;
    const hit = this.readCache.get(key);
    if (hit && hit.generation === generation) return hit.value as T;
    const value = await load();
    if (this.readCache.size >= 20_000) this.readCache.clear();
    this.readCache.set(key, { generation, value });
    return value;
  }

  /**
   * Runs a query built once and compiled once. The builder gets marker
   * values in place of `args`; later calls swap the real arguments into the
   * compiled parameters, so the hot paths skip Kysely's per-call building
   * and compiling while the SQL is still written once for both engines.
   * For the query modules: `key` names the query across all of them.
   */
  async hot<R>(key: string, args: unknown[], build: (...markers: string[]) => Compilable<R>, db: Db = this.db): Promise<R[]> {
    return (await db.executeQuery<R>(this.compiledHot(key, args, build))).rows;
  }

  /** The query `hot` and `runNow` run: compiled on first use, with `args` swapped into its parameters. */
  private compiledHot<R>(key: string, args: unknown[], build: (...markers: string[]) => Compilable<R>): CompiledQuery<R> {
    let entry = this.hotQueries.get(key);
    if (!entry) {
      const markers = args.map((_, i) => `\u0000berth-parameter-${i}`);
      const compiled = build(...markers).compile();
      entry = { compiled, positions: compiled.parameters.map((p) => markers.indexOf(p as string)) };
      this.hotQueries.set(key, entry);
    }
    const { compiled, positions } = entry;
    // The write counter's plugin saw this query once, when it was compiled; each run that may write counts.
    if (this.changes && compiled.query.kind !== 'SelectQueryNode') this.changes.writes.count++;
    const parameters = compiled.parameters.map((p, i) => (positions[i]! >= 0 ? args[positions[i]!] : p));
    return { ...compiled, parameters } as CompiledQuery<R>;
  }

  /**
   * SQLite: a hot read of one column, run at once on the connection and
   * returned as bare values. A listing of 10,000 tags then builds no row
   * objects (measured: about a fifth of the time of Kysely's rows, most of
   * the difference garbage). Undefined when it cannot run now: on
   * PostgreSQL, or while a Kysely transaction is open on the connection
   * across an await, whose uncommitted rows must not be read; the caller
   * then uses `hot`.
   */
  columnNow(key: string, args: unknown[], build: (...markers: string[]) => Compilable<unknown>): unknown[] | undefined {
    if (!this.sqlite || this.sqlite.inTransaction()) return undefined;
    const { sql: text, parameters } = this.compiledHot(key, args, build);
    return this.sqlite.column(text, parameters);
  }

  /**
   * SQLite only, inside a writeNow body: a hot query run synchronously on
   * the connection, as Kysely's SQLite driver would run it. For the query modules.
   */
  runNow<R>(key: string, args: unknown[], build: (...markers: string[]) => Compilable<R>): R[] {
    const sqlite = this.sqlite!;
    // Outside one, each write would commit on its own: a body that caught
    // the error of a transaction SQLite ended, and wrote on, say.
    if (!sqlite.inTransaction()) throw new Error('runNow: no transaction is open (it runs inside a writeNow body)');
    const { sql: text, parameters } = this.compiledHot(key, args, build);
    const statement = sqlite.prepare(text);
    if (statement.reader) return statement.all(parameters) as R[];
    statement.run(parameters);
    return [];
  }

  /** Opens the engine `opts` names, unmigrated. */
  protected static async connect(opts: MetadataOptions): Promise<Connection> {
    if (opts.url && /^postgres(ql)?:\/\//.test(opts.url)) {
      const pg = (await import('pg')).default;
      // bigint (oid 20) as a JS number: sizes and ids stay well below 2^53.
      const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) };
      const pool = new pg.Pool({ connectionString: opts.url, max: 10, types: types as never });
      // An idle connection that PostgreSQL ends (a restart, a failover, pg_terminate_backend) is
      // reported here and dropped by the pool; the next query opens another. Unheard, it would end the process.
      pool.on('error', () => {});
      const url = opts.url;
      const session = async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        return client;
      };
      return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres', session };
    }
    const Sqlite = (await import('better-sqlite3')).default;
    const database = new Sqlite(opts.sqlitePath ?? ':memory:');
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 10000');
    database.pragma('foreign_keys = ON');
    if (opts.walAutocheckpoint !== undefined) database.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(opts.walAutocheckpoint))}`);
    // Kysely prepares every query afresh; preparing is most of a small query's cost, so statements are cached by SQL text.
    const statements = new Map<string, ReturnType<typeof database.prepare>>();
    const cached = {
      close: () => database.close(),
      prepare: (text: string) => {
        let stmt = statements.get(text);
        if (!stmt) {
          stmt = database.prepare(text);
          if (statements.size < 2000) statements.set(text, stmt);
        }
        return stmt;
      },
    };
    const writes = new WriteCounter();
    const dataVersionStatement = database.prepare('PRAGMA data_version').pluck();
    // Read at most once per event-loop iteration: a request that arrives after
    // another process's commit is read in a later poll phase, whose first
    // check already sees the commit.
    let dataVersion: number | undefined;
    const currentDataVersion = () => {
      if (dataVersion === undefined) {
        dataVersion = dataVersionStatement.get() as number;
        setImmediate(() => {
          dataVersion = undefined;
        });
      }
      return dataVersion;
    };
    // Made once: better-sqlite3 defines four wrappers per transaction().
    const run = <T>(fn: () => T): T => fn();
    const immediate = database.transaction(run).immediate as <T>(fn: () => T) => T;
    // A batched body's savepoint is kept here rather than by better-sqlite3's
    // nested transaction, whose failed ROLLBACK TO would replace the body's
    // error and leave the savepoint open: the batch's commit would then keep
    // the writes of a body reported as failed.
    const [beginJob, undoJob, endJob, rollback] = ['SAVEPOINT berth_job', 'ROLLBACK TO berth_job', 'RELEASE berth_job', 'ROLLBACK'].map((text) => database.prepare(text));
    const savepoint = <T>(fn: () => T): { value: T } | { error: unknown } => {
      beginJob!.run();
      let value: T;
      try {
        value = fn();
      } catch (error) {
        // SQLite ended the whole transaction (a full disk, say): nothing of the batch can be kept.
        if (!database.inTransaction) throw error;
        undoJob!.run();
        endJob!.run();
        return { error };
      }
      endJob!.run();
      return { value };
    };
    return {
      db: new Kysely<Database>({ dialect: new SqliteDialect({ database: cached as unknown as typeof database }), plugins: [writes] }),
      dialect: 'sqlite',
      changes: { dataVersion: currentDataVersion, writes },
      gate: opts.writeGate,
      sqlite: {
        prepare: cached.prepare,
        immediate,
        savepoint,
        rollback: () => rollback!.run(),
        inTransaction: () => database.inTransaction,
        column: (text, parameters) => {
          // The statement is shared with Kysely, which wants row objects: plucked for this call only.
          const stmt = cached.prepare(text);
          stmt.pluck(true);
          try {
            return stmt.all(parameters);
          } finally {
            stmt.pluck(false);
          }
        },
      },
    };
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider(this.dialect),
      migrationTableName: 'berth_migrations',
      migrationLockTableName: 'berth_migrations_lock',
      // Migrations applied together share a timestamp and are ordered by name:
      // Kysely's default, localeCompare, loads ICU's collator on its first call
      // (14-18 ms of every start here). Code-unit order is the order Kysely
      // sorts the migrations it knows in, and the names are 'NNNN_…'.
      nameComparator: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new Error(`metadata database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`);
    }
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  /**
   * Takes the write lock at the start of a transaction. SQLite's deferred
   * transactions would otherwise read a snapshot that a writer in another
   * process can make stale before this one writes.
   */
  private async lockWrites(trx: Db): Promise<void> {
    if (this.dialect === 'sqlite') await this.hot('lockWrites', [], () => ({ compile: () => sql`UPDATE blobs SET size = size WHERE 0`.compile(this.db) }), trx);
  }

  /** Every transaction that writes goes through here, so the write lock is always taken first. */
  writeTransaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.writing(() =>
      this.db.transaction().execute(async (trx) => {
        await this.lockWrites(trx);
        return fn(trx);
      }),
    );
  }

  /**
   * Runs `fn`, which writes, as the one writer among this process's threads
   * that share a write gate (see gate.ts). Without a gate it just runs. The
   * gate is not re-entrant: `fn` must not call `writing` or
   * `writeTransaction` again (nor could it: it would also wait for this
   * thread's one connection, which a transaction holds).
   */
  async writing<T>(fn: () => Promise<T>): Promise<T> {
    // PostgreSQL: no gate; a transaction chosen as a deadlock's victim (or a
    // serialization failure) is run again here and never reaches a client.
    if (this.dialect === 'postgres') return retryConflicts(fn);
    if (!this.gate) return fn();
    const release = await this.gate.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * The time on the database's clock (ms since the epoch). On PostgreSQL,
   * every process serving one database reads the same clock, so grace
   * periods, 'deleting' marks and leases agree across machines whatever
   * their own clocks say. SQLite's processes share one machine: its clock.
   */
  async clock(db: Db = this.db): Promise<number> {
    if (this.dialect !== 'postgres') return now();
    const [row] = await this.hot('clock', [], () => ({ compile: () => sql<{ t: number }>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t`.compile(this.db) }), db);
    return Number(row!.t);
  }

  /**
   * PostgreSQL: takes the transaction-level locks of these repositories, in
   * key order. With lockBlobs, the one lock order of every write
   * transaction: repositories first, then blobs, each in key order; so no two
   * transactions can wait for each other in a cycle (see
   * docs/architecture.md, "Concurrency on PostgreSQL"). SQLite needs none:
   * a writer holds the whole database from its first statement.
   */
  async lockRepositories(trx: Db, names: Iterable<string>): Promise<void> {
    if (this.dialect !== 'postgres') return;
    const keys = sortedKeys(names);
    if (keys.length) await sql`SELECT pg_advisory_xact_lock(${REPOSITORY_LOCKS}, k) FROM unnest(${keys}::int[]) AS k ORDER BY k`.execute(trx);
  }

  /** PostgreSQL: takes the transaction-level locks of these blobs, in key order, after any repository's. */
  async lockBlobs(trx: Db, digests: Iterable<string>): Promise<void> {
    if (this.dialect !== 'postgres') return;
    const keys = sortedKeys(digests);
    if (keys.length) await sql`SELECT pg_advisory_xact_lock(${BLOB_LOCKS}, k) FROM unnest(${keys}::int[]) AS k ORDER BY k`.execute(trx);
  }

  /**
   * PostgreSQL: the lock taken alone to create a collection's row, in a
   * transaction that takes no other lock: outside the repository/blob
   * order, and no cycle with it.
   */
  async lockGcRuns(trx: Db): Promise<void> {
    if (this.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(${GC_RUN_LOCKS}, 0)`.execute(trx);
  }

  /**
   * SQLite only (canWriteNow): runs `fn` synchronously in a BEGIN IMMEDIATE
   * transaction on the connection under Kysely, its statements through
   * runNow, as this thread's one writer. Its writes are committed when it
   * returns; rolled back when it throws, and then `rolledBack` is returned
   * if what it threw was ROLL_BACK. For the query modules' hottest writes
   * (claimLinkNow).
   *
   * The bodies asked for while this thread waits for its turn (until the
   * event loop's current callbacks have run and the write gate is held)
   * share one transaction, each under its own savepoint, so each is still
   * all or nothing: a group commit, one commit's page writes for them all.
   */
  writeNow<T, R>(fn: () => T, rolledBack: R): Promise<T | R> {
    return new Promise<T | R>((resolve, reject) => {
      const job: NowJob = { fn, rolledBack, resolve: resolve as (value: unknown) => void, reject };
      if (this.nowBatch) {
        this.nowBatch.push(job);
        return;
      }
      const batch = [job];
      this.nowBatch = batch;
      const run = async () => {
        if (this.nowBatch === batch) this.nowBatch = null;
        this.commitNow(batch);
      };
      // A Kysely transaction may be open on this connection across an await
      // (a manifest's, say), and a transaction begun beside it would nest in
      // it as a savepoint, to be rolled back with it. Under a write gate none
      // can be: every transaction is begun under the gate, which is exclusive
      // within a thread too. Without one (a lone serving thread), Kysely's
      // connection is taken first, as its transactions take it.
      setImmediate(() => {
        this.writing(this.gate ? run : () => this.db.connection().execute(run)).catch((err: unknown) => {
          if (this.nowBatch === batch) this.nowBatch = null;
          for (const j of batch) j.reject(err);
        });
      });
    });
  }

  /** Runs a batch of writeNow bodies in one transaction and settles each. */
  private commitNow(batch: NowJob[]): void {
    const sqlite = this.sqlite!;
    if (sqlite.inTransaction()) throw new Error('writeNow: a transaction is open on the connection');
    let outcomes: Array<{ value: unknown } | { error: unknown }>;
    try {
      outcomes = batch.length > 1 ? sqlite.immediate(() => batch.map((job) => sqlite.savepoint(job.fn))) : [{ value: sqlite.immediate(batch[0]!.fn) }];
    } catch (error) {
      // Nothing of the batch was kept: a lone body's error is its own outcome; a batch's fails every body.
      if (batch.length === 1) outcomes = [{ error }];
      else {
        for (const job of batch) job.reject(error);
        return;
      }
    } finally {
      // better-sqlite3 tries its ROLLBACK once: one that failed would leave
      // this connection holding SQLite's write lock for every later write.
      if (sqlite.inTransaction()) sqlite.rollback();
    }
    batch.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if ('value' in outcome) job.resolve(outcome.value);
      else if (outcome.error === ROLL_BACK) job.resolve(job.rolledBack);
      else job.reject(outcome.error);
    });
  }

  /** Runs a trivial query; used by health checks. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}
