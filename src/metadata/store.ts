/**
 * The metadata database: repositories, blob links, manifests and their
 * references, tags, and the notification queue. One async API, two engines (SQLite
 * embedded, PostgreSQL at scale), SQL written once through Kysely.
 */
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Compilable,
  type CompiledQuery,
  type Expression,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type SqlBool,
  type Transaction,
  type UnknownRow,
} from 'kysely';
import { createHash } from 'node:crypto';
import type { Database } from './schema.js';
import type { WriteGate } from './gate.js';
import { migrationProvider, type Dialect } from './migrations.js';

export interface ManifestRecord {
  id: number;
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  subjectDigest: string | null;
  annotations: Record<string, string> | null;
}

export interface NewManifest {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  subjectDigest: string | null;
  annotations: Record<string, string> | null;
  /** Blobs (config, layers) that must be linked in the repository. */
  blobs: string[];
  /** Manifests (index children) that must exist in the repository. */
  manifests: string[];
}

export type PutManifestResult = { ok: true } | { ok: false; missingBlobs: string[]; missingManifests: string[] };

export interface CollectableManifest {
  id: number;
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
}

export interface StorageUsage {
  totalBytes: number;
  totalBlobs: number;
  reclaimableBytes: number;
  reclaimableBlobs: number;
  repositories: { name: string; bytes: number; blobs: number }[];
}

/** A garbage collection's row (see GcRunsTable); summary and progress are JSON text. */
export interface GcRunRow {
  id: number;
  state: 'queued' | 'running' | 'finished' | 'failed';
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  owner: string;
  createdAt: number;
  startedAt: number | null;
  updatedAt: number;
  finishedAt: number | null;
  progress: string | null;
  summary: string | null;
  error: string | null;
}

export interface GcRunOptions {
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
}

export interface Page {
  /** Return names strictly after this one. */
  after?: string;
  limit: number;
}

/** What a claim (claimBlob) locks and relies on besides its blob. */
export interface ClaimScope {
  /** The repository the body links into or writes to: locked before any blob. */
  repository?: string;
  /** Other blobs the body relies on (a manifest's config and layers): locked with the claimed one, in key order. */
  references?: string[];
  /** Asked under the locks before anything is written; when false, nothing is and the claim returns null. */
  onlyIf?: (trx: Transaction<Database>) => Promise<boolean>;
}

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

type Db = Kysely<Database> | Transaction<Database>;

/** What a ManifestRecord is read from. */
const MANIFEST_COLUMNS = ['m.id', 'm.digest', 'm.media_type', 'm.size', 'm.artifact_type', 'm.subject_digest', 'm.annotations'] as const;

const BUSY = Symbol('busy');
/** Tags, manifests or links a repository delete removes per transaction. */
export const REPOSITORY_DELETE_BATCH = 500;
/** Stale links removed per transaction by pruneStaleLinks. */
const PRUNE_BATCH = 1000;
/** Garbage collection rows kept once finished (the newest). */
const GC_RUNS_KEPT = 100;
/** PostgreSQL: the advisory lock taken alone to create a collection's row, so two processes asked at once start one run. */
const GC_RUN_LOCKS = 3;
/** A 'deleting' mark older than this belongs to a collector that died; it may be taken over. */
const STALE_DELETE_MS = 60_000;

/** This process's clock: used only on SQLite, whose processes share one machine (and its clock). */
const now = () => Date.now();

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
function lockKey(text: string): number {
  return createHash('sha256').update(text).digest().readInt32BE(0);
}
function sortedKeys(texts: Iterable<string>): number[] {
  return [...new Set([...texts].map(lockKey))].sort((a, b) => a - b);
}

/** A blob row marked 'deleting' by a collector that is still at work (not one that died). */
function beingDeleted(row: { state: string; deleting_at: number | null } | undefined, t: number): boolean {
  return row?.state === 'deleting' && Number(row.deleting_at) > t - STALE_DELETE_MS;
}

/** SQL: manifest `m` may be collected by the delete-untagged policy. */
function untaggedCondition(cutoff: number) {
  return sql`m.created_at < ${cutoff}
    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id)
    AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repository_id = m.repository_id AND x.digest = m.digest AND x.kind = 'manifest')
    AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.subject_digest = m.digest)
    AND (m.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM manifests p WHERE p.repository_id = m.repository_id AND p.digest = m.subject_digest))`;
}

/** SQL: blob `b` is referenced by no manifest and unused since `cutoff` (or half-deleted). */
function blobCollectable(cutoff: number) {
  return sql`(b.state = 'deleting' OR b.last_used_at < ${cutoff})
    AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.kind = 'blob' AND x.digest = b.digest)
    AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)`;
}

function toRecord(row: {
  id: number;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject_digest: string | null;
  annotations: string | null;
}): ManifestRecord {
  return {
    id: Number(row.id),
    digest: row.digest,
    mediaType: row.media_type,
    size: Number(row.size),
    artifactType: row.artifact_type,
    subjectDigest: row.subject_digest,
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : null,
  };
}

function toGcRun(r: {
  id: number;
  state: GcRunRow['state'];
  dry_run: number;
  grace_ms: number;
  delete_untagged: number;
  owner: string;
  created_at: number;
  started_at: number | null;
  updated_at: number;
  finished_at: number | null;
  progress: string | null;
  summary: string | null;
  error: string | null;
}): GcRunRow {
  const n = (v: number | null) => (v === null ? null : Number(v));
  return {
    id: Number(r.id),
    state: r.state,
    dryRun: Number(r.dry_run) === 1,
    graceMs: Number(r.grace_ms),
    deleteUntagged: Number(r.delete_untagged) === 1,
    owner: r.owner,
    createdAt: Number(r.created_at),
    startedAt: n(r.started_at),
    updatedAt: Number(r.updated_at),
    finishedAt: n(r.finished_at),
    progress: r.progress,
    summary: r.summary,
    error: r.error,
  };
}

/** SQLite: what claimLinkNow needs of the connection under Kysely. */
interface SqliteHandle {
  /** A prepared statement, cached by its text (shared with Kysely's queries). */
  prepare(text: string): { reader: boolean; all(parameters: readonly unknown[]): unknown[]; run(parameters: readonly unknown[]): unknown };
  /** Runs `fn` in a BEGIN IMMEDIATE transaction: committed when it returns, rolled back when it throws. */
  immediate<T>(fn: () => T): T;
  /** Whether a transaction is open on the connection (better-sqlite3 would nest a savepoint in it). */
  inTransaction(): boolean;
}

/**
 * An upload was started in a repository deleted since: linking it would
 * bring the repository back. Nothing is written; its upload is to be dropped.
 */
export class RepositoryDeletedError extends Error {
  constructor(readonly repository: string) {
    super(`repository ${repository} was deleted while the upload was in progress`);
  }
}

/**
 * A write into a repository that a delete is removing batch by batch. An
 * upload's claim is refused like one into a deleted repository (its upload
 * goes with the repository); a manifest write or a mount is refused.
 */
export class RepositoryBeingDeletedError extends RepositoryDeletedError {
  constructor(repository: string) {
    super(repository);
    this.message = `repository ${repository} is being deleted`;
  }
}

/**
 * A delete refused because a live manifest of the same repository still
 * needs what it would remove (a blob it references, an index's child).
 */
export class StillReferencedError extends Error {
  constructor(
    readonly kind: 'blob' | 'manifest',
    readonly digest: string,
    readonly referencedBy: string,
  ) {
    super(`${kind} ${digest} is referenced by manifest ${referencedBy} in this repository; delete that manifest first`);
  }
}

/** Thrown inside claimLinkNow's transaction to roll it back: the blob's bytes are not in place. */
const ABSENT = Symbol('absent');

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

export class MetadataStore {
  private readonly hotQueries = new Map<string, CompiledHot>();
  private readonly readCache = new Map<string, { generation: string; value: unknown }>();
  /** Set once by open(): every path that creates a repository inserts it with this visibility. */
  private newVisibility: 'public' | 'private' = 'public';

  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /** SQLite's data_version (changes when another connection commits) and our own write count. */
    private readonly changes?: { dataVersion: () => number; writes: WriteCounter },
    private readonly gate?: WriteGate,
    /** SQLite: the connection under Kysely, for the transactions run synchronously (claimLinkNow). */
    private readonly sqlite?: SqliteHandle,
  ) {}

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
   */
  private async hot<R>(key: string, args: unknown[], build: (...markers: string[]) => Compilable<R>, db: Db = this.db): Promise<R[]> {
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

  /** SQLite only: a hot query run synchronously on the connection, as Kysely's SQLite driver would run it. */
  private runNow<R>(sqlite: SqliteHandle, key: string, args: unknown[], build: (...markers: string[]) => Compilable<R>): R[] {
    const { sql: text, parameters } = this.compiledHot(key, args, build);
    const statement = sqlite.prepare(text);
    if (statement.reader) return statement.all(parameters) as R[];
    statement.run(parameters);
    return [];
  }

  static async open(opts: MetadataOptions): Promise<MetadataStore> {
    let store: MetadataStore;
    if (opts.url && /^postgres(ql)?:\/\//.test(opts.url)) {
      const pg = (await import('pg')).default;
      // bigint (oid 20) as a JS number: sizes and ids stay well below 2^53.
      const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) };
      const pool = new pg.Pool({ connectionString: opts.url, max: 10, types: types as never });
      store = new MetadataStore(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), 'postgres');
    } else {
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
      store = new MetadataStore(
        new Kysely<Database>({ dialect: new SqliteDialect({ database: cached as unknown as typeof database }), plugins: [writes] }),
        'sqlite',
        { dataVersion: currentDataVersion, writes },
        opts.writeGate,
        { prepare: cached.prepare, immediate: (fn) => database.transaction(fn).immediate(), inTransaction: () => database.inTransaction },
      );
    }
    store.newVisibility = opts.newRepositoryVisibility ?? 'public';
    await store.migrate();
    return store;
  }

  async migrate(): Promise<void> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect), migrationTableName: 'berth_migrations', migrationLockTableName: 'berth_migrations_lock' });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new Error(`metadata database migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`);
    }
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // ---- repositories --------------------------------------------------------

  async repositoryId(name: string, db: Db = this.db): Promise<number | null> {
    const [row] = await this.hot('repositoryId', [name], (n) => this.repositoryIdQuery(n), db);
    return row ? Number(row.id) : null;
  }

  async ensureRepository(name: string, db: Db = this.db): Promise<number> {
    const existing = await this.repositoryId(name, db);
    if (existing !== null) return existing;
    const insert = async () => this.hot('insertRepository', [name, await this.clock(db)], (n, at) => this.insertRepositoryQuery(n, at), db);
    // Inside a transaction the gate is held already (and is not re-entrant).
    await (db === this.db ? this.writing(insert) : insert());
    const id = await this.repositoryId(name, db);
    if (id === null) throw new Error(`repository ${name} vanished while being created`);
    return id;
  }

  /** Repositories holding at least one manifest, in byte order. */
  async listRepositories(page: Page, readable?: Expression<SqlBool>): Promise<string[]> {
    // Filtered for one caller (accounts on): a query of its own, the condition differs per caller.
    if (readable) {
      const filtered = await this.db
        .selectFrom('repositories as r')
        .select('r.name')
        .where('r.name', '>', page.after ?? '')
        .where(({ exists, selectFrom }) => exists(selectFrom('manifests as m').select('m.id').whereRef('m.repository_id', '=', 'r.id')))
        .where(readable)
        .orderBy('r.name')
        .limit(page.limit)
        .execute();
      return filtered.map((r) => r.name);
    }
    const rows = await this.hot('listRepositories', [page.after ?? '', page.limit], (after, limit) =>
      this.db
        .selectFrom('repositories as r')
        .select('r.name')
        .where('r.name', '>', after)
        .where(({ exists, selectFrom }) => exists(selectFrom('manifests as m').select('m.id').whereRef('m.repository_id', '=', 'r.id')))
        .orderBy('r.name')
        .limit(limit as unknown as number),
    );
    return rows.map((r) => r.name);
  }

  // ---- blobs -----------------------------------------------------------------

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
   * Runs `body` in a transaction that holds the lock on blob `digest`, after
   * recording the blob as live and just used. `body` makes the bytes present
   * (commits an upload, writes a manifest) and links them. While a garbage
   * collection is deleting this blob's bytes, it waits and retries, so bytes
   * are never committed just before a collector removes them.
   */
  async claimBlob<T>(digest: string, size: number, body: (trx: Transaction<Database>) => Promise<T>, scope: ClaimScope = {}): Promise<T> {
    return this.whileDeleting(digest, () =>
      this.writeTransaction(async (trx) => {
        if (scope.repository !== undefined) await this.lockRepositories(trx, [scope.repository]);
        await this.lockBlobs(trx, [digest, ...(scope.references ?? [])]);
        const [row] = await this.hot('blobState', [digest], (d) => this.blobStateQuery(d), trx);
        const t = await this.clock(trx);
        if (beingDeleted(row, t)) return BUSY;
        // Under the repository's lock, which the delete's every batch holds: no write slips in between two batches.
        if (scope.repository !== undefined && (await this.beingDeletedRepository(scope.repository, trx))) throw new RepositoryBeingDeletedError(scope.repository);
        if (scope.onlyIf && !(await scope.onlyIf(trx))) return { value: null as T };
        await this.hot('recordBlob', [digest, size, t], (d, s, at) => this.recordBlobQuery(d, s, at), trx);
        return { value: await body(trx) };
      }),
    );
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
   * claimBlob, with a body that links the blob into `repository`, run on
   * SQLite as one synchronous transaction: a small push's claim is most of
   * its database time, and Kysely's chain of promises most of the claim's
   * (about 170 µs of CPU through Kysely, 100 µs this way). `present` is
   * asked under the lock, as claimBlob's body asks the blob store. Returns
   * true when linked; false when `present()` said no, with nothing written,
   * for the caller to put the bytes back and claim the general way; null
   * when there is no such path (PostgreSQL).
   */
  async claimLinkNow(repository: string, digest: string, size: number, present: () => boolean, startedAt?: number): Promise<boolean | null> {
    const sqlite = this.sqlite;
    if (!sqlite) return null;
    // A Kysely transaction may be open on this connection across an await
    // (a manifest's, say), and a transaction begun beside it would nest in
    // it as a savepoint, to be rolled back with it. Under a write gate none
    // can be: every transaction is begun under the gate, which is exclusive
    // within a thread too. Without one (a lone serving thread), Kysely's
    // connection is taken first, as its transactions take it.
    const run = async () => {
      if (sqlite.inTransaction()) throw new Error('claimLinkNow: a transaction is open on the connection');
      try {
        return sqlite.immediate(() => {
          const [row] = this.runNow(sqlite, 'blobState', [digest], (d) => this.blobStateQuery(d));
          const t = now();
          if (beingDeleted(row, t)) return BUSY;
          this.runNow(sqlite, 'recordBlob', [digest, size, t], (d, s, at) => this.recordBlobQuery(d, s, at));
          if (!present()) throw ABSENT;
          let [repo] = this.runNow(sqlite, 'repositoryId', [repository], (n) => this.repositoryIdQuery(n));
          if (repo?.deleting_since != null && Number(repo.deleting_since) > t - STALE_DELETE_MS) throw new RepositoryBeingDeletedError(repository);
          if (!repo) {
            // Only when the repository is missing (not on the hot path): was it deleted after this upload began?
            if (startedAt !== undefined) {
              const [gone] = this.runNow(sqlite, 'repositoryDeletedAt', [repository], (n) => this.repositoryDeletedAtQuery(n));
              if (gone && Number(gone.deleted_at) >= startedAt) throw new RepositoryDeletedError(repository);
            }
            this.runNow(sqlite, 'insertRepository', [repository, t], (n, at) => this.insertRepositoryQuery(n, at));
            [repo] = this.runNow(sqlite, 'repositoryId', [repository], (n) => this.repositoryIdQuery(n));
          }
          this.runNow(sqlite, 'linkBlob', [Number(repo!.id), digest, t], (id, d, at) => this.linkBlobQuery(id, d, at));
          return { value: true };
        });
      } catch (err) {
        if (err === ABSENT) return { value: false };
        throw err;
      }
    };
    const claim = this.gate ? run : () => this.db.connection().execute(run);
    return this.whileDeleting(digest, () => this.writing(claim));
  }

  /** Runs `attempt` until it does not find the blob being deleted by a garbage collection, waiting longer each time. */
  private async whileDeleting<T>(digest: string, attempt: () => Promise<{ value: T } | typeof BUSY>): Promise<T> {
    const started = Date.now();
    for (let n = 0; ; n++) {
      const result = await attempt();
      if (result !== BUSY) return result.value;
      if (Date.now() - started > 30_000) throw new Error(`blob ${digest} stayed locked by a garbage collection for 30s`);
      await new Promise((r) => setTimeout(r, Math.min(500, 10 * 2 ** n)));
    }
  }

  private blobStateQuery(digest: string) {
    return this.db.selectFrom('blobs').select(['state', 'deleting_at']).where('digest', '=', digest);
  }

  private recordBlobQuery(digest: string, size: string, at: string) {
    const t = at as unknown as number;
    return this.db
      .insertInto('blobs')
      .values({ digest, size: size as unknown as number, created_at: t, last_used_at: t, state: 'live', deleting_at: null })
      .onConflict((oc) => oc.column('digest').doUpdateSet({ last_used_at: t, state: 'live', deleting_at: null }));
  }

  private repositoryIdQuery(name: string) {
    return this.db.selectFrom('repositories').select(['id', 'deleting_since']).where('name', '=', name);
  }

  /** Whether a delete is removing this repository now (its mark refreshed within STALE_DELETE_MS). */
  private async beingDeletedRepository(name: string, db: Db): Promise<boolean> {
    const [row] = await this.hot('repositoryId', [name], (n) => this.repositoryIdQuery(n), db);
    return row?.deleting_since != null && Number(row.deleting_since) > (await this.clock(db)) - STALE_DELETE_MS;
  }

  private repositoryDeletedAtQuery(name: string) {
    return this.db.selectFrom('repository_deletions').select('deleted_at').where('name', '=', name);
  }

  private insertRepositoryQuery(name: string, at: string) {
    return this.db.insertInto('repositories').values({ name, created_at: at as unknown as number, visibility: this.newVisibility }).onConflict((oc) => oc.column('name').doNothing());
  }

  private linkBlobQuery(repositoryId: string, digest: string, at: string) {
    return this.db
      .insertInto('repository_blobs')
      .values({ repository_id: repositoryId as unknown as number, digest, created_at: at as unknown as number })
      .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet({ created_at: at as unknown as number }));
  }

  /** Links a blob into a repository inside a claimBlob transaction whose scope holds that repository. */
  async linkInTransaction(trx: Transaction<Database>, repository: string, digest: string): Promise<void> {
    const repositoryId = await this.ensureRepository(repository, trx);
    await this.hot('linkBlob', [repositoryId, digest, await this.clock(trx)], (id, d, at) => this.linkBlobQuery(id, d, at), trx);
  }

  /**
   * linkInTransaction for an upload started at `startedAt` (database
   * clock): refused with RepositoryDeletedError when the repository is gone
   * because it was deleted after the upload began, rather than created again.
   */
  async linkUploadInTransaction(trx: Transaction<Database>, repository: string, digest: string, startedAt: number): Promise<void> {
    if ((await this.repositoryId(repository, trx)) === null) {
      const [gone] = await this.hot('repositoryDeletedAt', [repository], (n) => this.repositoryDeletedAtQuery(n), trx);
      if (gone && Number(gone.deleted_at) >= startedAt) throw new RepositoryDeletedError(repository);
    }
    await this.linkInTransaction(trx, repository, digest);
  }

  /** Records a blob whose bytes are already committed and links it into a repository. */
  async linkBlob(repository: string, digest: string, size: number): Promise<void> {
    await this.claimBlob(digest, size, (trx) => this.linkInTransaction(trx, repository, digest), { repository });
  }

  /**
   * Cross-repository mount: links `digest` into `repository` if it is linked
   * in `from`, atomically with respect to garbage collection.
   */
  async mountBlob(repository: string, from: string, digest: string): Promise<{ size: number } | null> {
    const linked = await this.linkedBlob(from, digest);
    if (!linked) return null;
    // Still linked in `from` and live, under the blob's lock: its bytes are
    // present and no collection can be removing them. Otherwise nothing is
    // recorded (a live record must mean present bytes).
    const stillLinked = async (trx: Transaction<Database>) =>
      (await trx
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select('rb.digest')
        .where('r.name', '=', from)
        .where('rb.digest', '=', digest)
        .where('b.state', '=', 'live')
        .executeTakeFirst()) !== undefined;
    return this.claimBlob(
      digest,
      linked.size,
      async (trx) => {
        await this.linkInTransaction(trx, repository, digest);
        return linked;
      },
      { repository, onlyIf: stillLinked },
    );
  }

  /** Repositories a live blob is linked in, by name (the candidates of an automatic mount). */
  async repositoriesWithBlob(digest: string, page: Page): Promise<string[]> {
    const rows = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .innerJoin('blobs as b', 'b.digest', 'rb.digest')
      .select('r.name')
      .where('rb.digest', '=', digest)
      .where('b.state', '=', 'live')
      .where('r.name', '>', page.after ?? '')
      .orderBy('r.name')
      .limit(page.limit)
      .execute();
    return rows.map((r) => r.name);
  }

  /** The size of a blob linked in a repository, or null. */
  async linkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    return this.cachedRead(`linkedBlob ${repository} ${digest}`, () => this.loadLinkedBlob(repository, digest));
  }

  private async loadLinkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    const [row] = await this.hot('linkedBlob', [repository, digest], (repo, d) =>
      this.db
        .selectFrom('repository_blobs as rb')
        .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
        .innerJoin('blobs as b', 'b.digest', 'rb.digest')
        .select('b.size')
        .where('r.name', '=', repo)
        .where('rb.digest', '=', d)
        .where('b.state', '=', 'live'),
    );
    return row ? { size: Number(row.size) } : null;
  }

  /**
   * Removes a blob's link from a repository. Refused (StillReferencedError)
   * while a manifest of the repository references the blob: an acknowledged
   * manifest keeps every blob it needs until it is deleted itself. Checked
   * under the repository's lock, which a manifest write holds too.
   */
  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    return this.writeTransaction(async (trx) => {
      await this.lockRepositories(trx, [repository]);
      const repositoryId = await this.repositoryId(repository, trx);
      if (repositoryId === null) return false;
      const user = await this.referencedBy(trx, repositoryId, 'blob', digest);
      if (user !== null) throw new StillReferencedError('blob', digest, user);
      const r = await trx.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** The digest of a manifest of the repository (other than `except`) that references `digest` as a blob or a child, or null. */
  private async referencedBy(trx: Db, repositoryId: number, kind: 'blob' | 'manifest', digest: string, except?: number): Promise<string | null> {
    let q = trx
      .selectFrom('manifest_references as x')
      .innerJoin('manifests as m', 'm.id', 'x.manifest_id')
      .select('m.digest')
      .where('x.repository_id', '=', repositoryId)
      .where('x.digest', '=', digest)
      .where('x.kind', '=', kind);
    if (except !== undefined) q = q.where('x.manifest_id', '!=', except);
    const row = await q.orderBy('m.id').limit(1).executeTakeFirst();
    return row ? row.digest : null;
  }

  /** A committed blob known anywhere in the registry, or null. */
  async knownBlob(digest: string): Promise<{ size: number } | null> {
    const row = await this.db.selectFrom('blobs').select('size').where('digest', '=', digest).where('state', '=', 'live').executeTakeFirst();
    return row ? { size: Number(row.size) } : null;
  }

  // ---- manifests -------------------------------------------------------------

  /**
   * Stores a manifest and its references and points `tags` at it, all in one
   * transaction, after checking inside that transaction that everything it
   * references is present in the repository.
   */
  async putManifest(repository: string, m: NewManifest, tags: string[], writeBytes: () => Promise<void> = async () => {}): Promise<PutManifestResult> {
    // The scope: the repository (its links, manifests and tags change only
    // under its lock) and every blob the manifest references (a collection
    // marks a blob only under its lock, and finds these references once this commits).
    return this.claimBlob(m.digest, m.size, async (trx) => {
      await writeBytes();
      const repositoryId = await this.ensureRepository(repository, trx);
      const missingBlobs = await this.missing(trx, 'repository_blobs', repositoryId, m.blobs);
      const missingManifests = await this.missing(trx, 'manifests', repositoryId, m.manifests);
      if (missingBlobs.length || missingManifests.length) return { ok: false as const, missingBlobs, missingManifests };

      const t = await this.clock(trx);
      await trx
        .insertInto('manifests')
        .values({
          repository_id: repositoryId,
          digest: m.digest,
          media_type: m.mediaType,
          size: m.size,
          artifact_type: m.artifactType,
          subject_digest: m.subjectDigest,
          annotations: m.annotations ? JSON.stringify(m.annotations) : null,
          created_at: t,
        })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
      const row = await trx.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).where('digest', '=', m.digest).executeTakeFirstOrThrow();
      const manifestId = Number(row.id);

      const existingRefs = await trx.selectFrom('manifest_references').select('manifest_id').where('manifest_id', '=', manifestId).limit(1).execute();
      if (existingRefs.length === 0) {
        const refs = [
          ...new Set(m.blobs.map((d) => `blob ${d}`).concat(m.manifests.map((d) => `manifest ${d}`), m.subjectDigest ? [`subject ${m.subjectDigest}`] : [])),
        ].map((s) => {
          const [kind, digest] = s.split(' ') as ['blob' | 'manifest' | 'subject', string];
          return { manifest_id: manifestId, repository_id: repositoryId, digest, kind };
        });
        for (let i = 0; i < refs.length; i += 500) await trx.insertInto('manifest_references').values(refs.slice(i, i + 500)).execute();
      }
      // Referenced blobs count as used now: the grace period starts again.
      for (let i = 0; i < m.blobs.length; i += 500) {
        await trx.updateTable('blobs').set({ last_used_at: t }).where('digest', 'in', m.blobs.slice(i, i + 500)).execute();
      }

      for (const tag of tags) {
        await trx
          .insertInto('tags')
          .values({ repository_id: repositoryId, name: tag, manifest_id: manifestId, updated_at: t })
          .onConflict((oc) => oc.columns(['repository_id', 'name']).doUpdateSet({ manifest_id: manifestId, updated_at: t }))
          .execute();
      }
      return { ok: true as const };
    }, { repository, references: m.blobs });
  }

  /**
   * Which of `digests` are absent from the repository. Blobs must be live.
   * The caller holds the repository's lock and the blobs' (PostgreSQL), so
   * neither a delete nor a collection can change the answer before it commits.
   */
  private async missing(trx: Db, table: 'repository_blobs' | 'manifests', repositoryId: number, digests: string[]): Promise<string[]> {
    const wanted = [...new Set(digests)];
    if (wanted.length === 0) return [];
    const found = new Set<string>();
    for (let i = 0; i < wanted.length; i += 500) {
      const chunk = wanted.slice(i, i + 500);
      if (table === 'repository_blobs') {
        const q = trx
          .selectFrom('repository_blobs as rb')
          .innerJoin('blobs as b', 'b.digest', 'rb.digest')
          .select('rb.digest')
          .where('rb.repository_id', '=', repositoryId)
          .where('rb.digest', 'in', chunk)
          .where('b.state', '=', 'live');
        for (const r of await q.execute()) found.add(r.digest);
      } else {
        const rows = await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', chunk).execute();
        for (const r of rows) found.add(r.digest);
      }
    }
    return wanted.filter((d) => !found.has(d));
  }

  async manifestByDigest(repository: string, digest: string): Promise<ManifestRecord | null> {
    return this.cachedRead(`manifestByDigest ${repository} ${digest}`, () => this.loadManifestByDigest(repository, digest));
  }

  private async loadManifestByDigest(repository: string, digest: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot('manifestByDigest', [repository, digest], (repo, d) =>
      this.db
        .selectFrom('manifests as m')
        .innerJoin('repositories as r', 'r.id', 'm.repository_id')
        .select(MANIFEST_COLUMNS)
        .where('r.name', '=', repo)
        .where('m.digest', '=', d),
    );
    return row ? toRecord(row) : null;
  }

  async manifestByTag(repository: string, tag: string): Promise<ManifestRecord | null> {
    return this.cachedRead(`manifestByTag ${repository} ${tag}`, () => this.loadManifestByTag(repository, tag));
  }

  private async loadManifestByTag(repository: string, tag: string): Promise<ManifestRecord | null> {
    const [row] = await this.hot('manifestByTag', [repository, tag], (repo, t) =>
      this.db
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .innerJoin('manifests as m', 'm.id', 't.manifest_id')
        .select(MANIFEST_COLUMNS)
        .where('r.name', '=', repo)
        .where('t.name', '=', t),
    );
    return row ? toRecord(row) : null;
  }

  /**
   * Deletes a manifest from a repository with every tag pointing at it.
   * Refused (StillReferencedError) while another manifest of the repository
   * lists it as a child: checked under the repository's lock, which a
   * manifest write holds while it checks its children, so neither can slip
   * past the other.
   */
  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.writeTransaction(async (trx) => {
      await this.lockRepositories(trx, [repository]);
      const repositoryId = await this.repositoryId(repository, trx);
      if (repositoryId === null) return false;
      const row = await trx.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      if (!row) return false;
      const parent = await this.referencedBy(trx, repositoryId, 'manifest', digest, row.id);
      if (parent !== null) throw new StillReferencedError('manifest', digest, parent);
      await trx.deleteFrom('tags').where('manifest_id', '=', row.id).execute();
      await trx.deleteFrom('manifest_references').where('manifest_id', '=', row.id).execute();
      await trx.deleteFrom('manifests').where('id', '=', row.id).execute();
      return true;
    });
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const repositoryId = await this.repositoryId(repository);
    if (repositoryId === null) return false;
    const r = await this.writing(() => this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Tags in byte order, or null when the repository is unknown. A repository
   * is known while it holds a manifest (as in listRepositories and
   * storageUsage): one whose last manifest was deleted is unknown.
   */
  async listTags(repository: string, page: Page): Promise<string[] | null> {
    const repositoryId = await this.repositoryId(repository);
    if (repositoryId === null) return null;
    const held = await this.db.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).limit(1).executeTakeFirst();
    if (!held) return null;
    const rows = await this.hot('listTags', [repositoryId, page.after ?? '', page.limit], (id, after, limit) =>
      // '' sorts before every tag, so "after ''" is the first page.
      this.db.selectFrom('tags').select('name').where('repository_id', '=', id as unknown as number).where('name', '>', after).orderBy('name').limit(limit as unknown as number),
    );
    return rows.map((r) => r.name);
  }

  /**
   * Manifests in a repository whose `subject` is `digest`, in the order they
   * were first pushed (by id), at most `page.limit` of them after the one
   * with id `page.afterId`. The (repository_id, subject_digest) index finds them.
   */
  async referrers(repository: string, digest: string, artifactType?: string, page: { afterId?: number; limit: number } = { limit: 1000 }): Promise<ManifestRecord[]> {
    let q = this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(MANIFEST_COLUMNS)
      .where('r.name', '=', repository)
      .where('m.subject_digest', '=', digest)
      .where('m.id', '>', page.afterId ?? 0)
      .orderBy('m.id')
      .limit(page.limit);
    if (artifactType !== undefined) q = q.where('m.artifact_type', '=', artifactType);
    return (await q.execute()).map(toRecord);
  }

  // ---- garbage collection and repository deletes -------------------------------

  /**
   * Untagged manifests the delete-untagged policy may collect: no tag, older
   * than `cutoff`, not a child of another manifest in the repository, without
   * referrers, and not a referrer of a subject that is still present.
   */
  async untaggedManifests(cutoff: number, limit: number): Promise<CollectableManifest[]> {
    const rows = await sql<{ id: number; repository: string; digest: string; media_type: string; size: number }>`
      SELECT m.id, r.name AS repository, m.digest, m.media_type, m.size
      FROM manifests m JOIN repositories r ON r.id = m.repository_id
      WHERE ${untaggedCondition(cutoff)}
      ORDER BY m.id LIMIT ${limit}`.execute(this.db);
    return rows.rows.map((r) => ({ id: Number(r.id), repository: r.repository, digest: r.digest, mediaType: r.media_type, size: Number(r.size) }));
  }

  /** Deletes an untagged manifest if it is still collectable (re-checked in the same statement). */
  async deleteUntaggedManifest(id: number, cutoff: number): Promise<boolean> {
    return this.writeTransaction(async (trx) => {
      const owner = await trx.selectFrom('manifests as m').innerJoin('repositories as r', 'r.id', 'm.repository_id').select('r.name').where('m.id', '=', id).executeTakeFirst();
      if (!owner) return false;
      // A repository keeps its id while it exists; a deleted one takes its manifests with it.
      await this.lockRepositories(trx, [owner.name]);
      const r = await sql`DELETE FROM manifests WHERE id = ${id} AND id IN (SELECT m.id FROM manifests m WHERE m.id = ${id} AND ${untaggedCondition(cutoff)})`.execute(trx);
      const deleted = Number(r.numAffectedRows ?? 0) > 0;
      if (deleted) await trx.deleteFrom('manifest_references').where('manifest_id', '=', id).execute();
      return deleted;
    });
  }

  /** Blobs no manifest references, unused since `cutoff` (or left half-deleted by a collector). */
  async blobCandidates(cutoff: number, limit: number, after = ''): Promise<{ digest: string; size: number }[]> {
    const rows = await sql<{ digest: string; size: number }>`
      SELECT b.digest, b.size FROM blobs b
      WHERE b.digest > ${after} AND ${blobCollectable(cutoff)}
      ORDER BY b.digest LIMIT ${limit}`.execute(this.db);
    return rows.rows.map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  /**
   * First phase of deleting a blob: under its lock, re-checks that it is
   * collectable, removes its repository links and marks it 'deleting' (from
   * then on it is invisible). Returns the repositories it was linked in, or
   * null when it is no longer collectable.
   */
  async markBlobDeleting(digest: string, cutoff: number): Promise<{ repositories: string[]; size: number } | null> {
    const linkedIn = async (db: Db) =>
      (await db.selectFrom('repository_blobs as rb').innerJoin('repositories as r', 'r.id', 'rb.repository_id').select('r.name').where('rb.digest', '=', digest).execute()).map((r) => r.name);
    // The links it removes belong to their repositories, whose locks come
    // before the blob's: the repositories linking it are read first, locked,
    // then the blob. A link made in another repository meanwhile (its claim
    // held the blob's lock, so it is visible once this one has it) sends the
    // transaction round again with that repository too.
    let repositories = this.dialect === 'postgres' ? await linkedIn(this.db) : [];
    // Each round adds a repository that linked the blob meanwhile; one that
    // keeps being linked anew is in use: it is left for the next collection.
    for (let round = 0; round < 20; round++) {
      type Marked = { again: false; repositories: string[]; size: number } | { again: true; repos: string[] } | null;
      const result = await this.writeTransaction(async (trx): Promise<Marked> => {
        await this.lockRepositories(trx, repositories);
        await this.lockBlobs(trx, [digest]);
        const row = (await sql<{ size: number }>`SELECT b.size FROM blobs b WHERE b.digest = ${digest} AND ${blobCollectable(cutoff)}`.execute(trx)).rows[0];
        if (!row) return null;
        const repos = await linkedIn(trx);
        if (this.dialect === 'postgres' && repos.some((r) => !repositories.includes(r))) return { again: true, repos };
        await trx.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
        await trx.updateTable('blobs').set({ state: 'deleting', deleting_at: await this.clock(trx) }).where('digest', '=', digest).execute();
        return { again: false, repositories: repos, size: Number(row.size) };
      });
      if (result === null) return null;
      if (result.again) {
        repositories = [...new Set([...repositories, ...result.repos])];
        continue;
      }
      return { repositories: result.repositories, size: result.size };
    }
    return null;
  }

  /** Second phase: forgets a blob whose bytes are gone, unless a push revived it meanwhile. */
  async forgetBlob(digest: string): Promise<void> {
    await this.writeTransaction(async (trx) => {
      await this.lockBlobs(trx, [digest]);
      await trx.deleteFrom('blobs').where('digest', '=', digest).where('state', '=', 'deleting').execute();
    });
  }

  /**
   * Removes links older than `cutoff` that no manifest of their repository
   * references, PRUNE_BATCH links per transaction, so that neither memory nor
   * a lock grows with their number.
   */
  async pruneStaleLinks(cutoff: number): Promise<number> {
    const stale = (repositoryId?: number) => sql`
      repository_blobs.created_at < ${cutoff}
      ${repositoryId === undefined ? sql`` : sql`AND repository_blobs.repository_id = ${repositoryId}`}
      AND NOT EXISTS (SELECT 1 FROM manifest_references x
                      WHERE x.repository_id = repository_blobs.repository_id AND x.digest = repository_blobs.digest AND x.kind = 'blob')`;
    const deleteBatch = async (db: Db, repositoryId?: number) =>
      Number(
        (
          await sql`DELETE FROM repository_blobs WHERE (repository_id, digest) IN (
            SELECT repository_id, digest FROM repository_blobs WHERE ${stale(repositoryId)} LIMIT ${PRUNE_BATCH})`.execute(db)
        ).numAffectedRows ?? 0,
      );
    let pruned = 0;
    if (this.dialect !== 'postgres') {
      for (;;) {
        const n = await this.writeTransaction((trx) => deleteBatch(trx));
        pruned += n;
        if (n < PRUNE_BATCH) return pruned;
      }
    }
    // PostgreSQL: one repository at a time, under its lock, which every
    // push, mount and manifest write into it holds: a link cannot be pruned
    // between a manifest's check of it and the manifest's commit. The
    // repositories are read a page at a time too.
    let after = '';
    for (;;) {
      const repos = await sql<{ id: number; name: string }>`
        SELECT DISTINCT r.id, r.name FROM repository_blobs JOIN repositories r ON r.id = repository_blobs.repository_id
        WHERE r.name > ${after} AND ${stale()} ORDER BY r.name LIMIT ${PRUNE_BATCH}`.execute(this.db);
      for (const repo of repos.rows) {
        for (;;) {
          const n = await this.writeTransaction(async (trx) => {
            await this.lockRepositories(trx, [repo.name]);
            return deleteBatch(trx, Number(repo.id));
          });
          pruned += n;
          if (n < PRUNE_BATCH) break;
        }
      }
      if (repos.rows.length < PRUNE_BATCH) return pruned;
      after = repos.rows[repos.rows.length - 1]!.name;
    }
  }

  /** Blobs some manifest references (what a mark phase marks). */
  async referencedBlobCount(): Promise<number> {
    const r = await sql<{ n: number }>`
      SELECT count(*) AS n FROM blobs b
      WHERE EXISTS (SELECT 1 FROM manifest_references x WHERE x.kind = 'blob' AND x.digest = b.digest)
         OR EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)`.execute(this.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  /**
   * Claims bytes the database has no record of, so they can be deleted: a
   * 'deleting' row is inserted under the lock unless a push recorded the
   * blob first (then it is not an orphan). Follow with store.delete and forgetBlob.
   */
  async claimOrphan(digest: string, size: number): Promise<boolean> {
    return this.writeTransaction(async (trx) => {
      await this.lockBlobs(trx, [digest]);
      const t = await this.clock(trx);
      const r = await trx
        .insertInto('blobs')
        .values({ digest, size, created_at: t, last_used_at: 0, state: 'deleting', deleting_at: t })
        .onConflict((oc) => oc.column('digest').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
    });
  }

  /** Whether the database knows a blob at all (any state): the orphan sweep spares those. */
  async blobRecorded(digest: string): Promise<boolean> {
    return (await this.db.selectFrom('blobs').select('digest').where('digest', '=', digest).executeTakeFirst()) !== undefined;
  }

  /**
   * Deletes a repository with every tag, manifest and link, in batches of
   * REPOSITORY_DELETE_BATCH rows, each its own short transaction under the
   * repository's lock (so neither a lock nor a transaction grows with the
   * repository):
   * 1. the repository is marked as being deleted; from then on claims,
   *    mounts and manifest writes into it are refused
   *    (RepositoryBeingDeletedError), so nothing is added behind the delete;
   * 2. tags, then manifests (with their references), then blob links go, a
   *    batch at a time; `onBatch` is told what each committed batch removed;
   * 3. the repository row goes and the time of the delete is recorded
   *    (repository_deletions: an upload begun before it is refused later).
   * Each batch refreshes the mark; a delete that died leaves it to expire
   * after STALE_DELETE_MS, and running the delete again finishes the job.
   * Returns the counts, or null when the repository did not exist.
   */
  async deleteRepository(
    name: string,
    onBatch: (removed: { manifests: { digest: string; mediaType: string; size: number }[]; tags: { tag: string; digest: string }[] }) => Promise<void> = async () => {},
  ): Promise<{ manifests: number; tags: number } | null> {
    const under = <T>(fn: (trx: Transaction<Database>, repositoryId: number) => Promise<T>) =>
      this.writeTransaction(async (trx) => {
        await this.lockRepositories(trx, [name]);
        const repositoryId = await this.repositoryId(name, trx);
        if (repositoryId === null) return null;
        await trx.updateTable('repositories').set({ deleting_since: await this.clock(trx) }).where('id', '=', repositoryId).execute();
        return { value: await fn(trx, repositoryId) };
      });
    // 1. The mark (a repository deleted meanwhile by another delete: nothing to do).
    if ((await under(async () => true)) === null) return null;
    const counts = { manifests: 0, tags: 0 };
    // 2. Batches. A batch that finds the repository gone (a concurrent delete finished it) ends the job.
    for (;;) {
      const batch = await under(async (trx, repositoryId) => {
        const tags = await trx
          .selectFrom('tags as t')
          .innerJoin('manifests as m', 'm.id', 't.manifest_id')
          .select(['t.name', 'm.digest'])
          .where('t.repository_id', '=', repositoryId)
          .orderBy('t.name')
          .limit(REPOSITORY_DELETE_BATCH)
          .execute();
        if (tags.length) {
          await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', 'in', tags.map((t) => t.name)).execute();
          return { tags: tags.map((t) => ({ tag: t.name, digest: t.digest })), manifests: [], more: true };
        }
        const manifests = await trx.selectFrom('manifests').select(['id', 'digest', 'media_type', 'size']).where('repository_id', '=', repositoryId).orderBy('id').limit(REPOSITORY_DELETE_BATCH).execute();
        if (manifests.length) {
          const ids = manifests.map((m) => m.id);
          await trx.deleteFrom('manifest_references').where('manifest_id', 'in', ids).execute();
          await trx.deleteFrom('manifests').where('id', 'in', ids).execute();
          return { tags: [], manifests: manifests.map((m) => ({ digest: m.digest, mediaType: m.media_type, size: Number(m.size) })), more: true };
        }
        const links = await trx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', repositoryId).orderBy('digest').limit(REPOSITORY_DELETE_BATCH).execute();
        if (links.length) {
          await trx.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', 'in', links.map((l) => l.digest)).execute();
          return { tags: [], manifests: [], more: true };
        }
        // 3. Nothing left: the repository itself.
        await trx.deleteFrom('repositories').where('id', '=', repositoryId).execute();
        const at = await this.clock(trx);
        await trx
          .insertInto('repository_deletions')
          .values({ name, deleted_at: at })
          .onConflict((oc) => oc.column('name').doUpdateSet({ deleted_at: at }))
          .execute();
        return { tags: [], manifests: [], more: false };
      });
      if (batch === null) return counts;
      const { tags, manifests, more } = batch.value;
      counts.tags += tags.length;
      counts.manifests += manifests.length;
      if (tags.length || manifests.length) await onBatch({ tags, manifests });
      if (!more) return counts;
    }
  }

  /**
   * Storage accounting: bytes per repository holding a manifest (each
   * distinct blob or manifest counted once per repository), total bytes (each blob once), and bytes a
   * collection could reclaim now (unreferenced, ignoring the grace period).
   */
  async storageUsage(repository?: string): Promise<StorageUsage> {
    const perRepo = await sql<{ name: string; bytes: number; blobs: number }>`
      SELECT r.name, COALESCE(SUM(u.size), 0) AS bytes, COUNT(u.digest) AS blobs
      FROM repositories r LEFT JOIN (
        SELECT rb.repository_id, b.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE b.state = 'live'
        UNION
        SELECT m.repository_id, m.digest, m.size FROM manifests m
      ) u ON u.repository_id = r.id
      WHERE EXISTS (SELECT 1 FROM manifests h WHERE h.repository_id = r.id)
      ${repository === undefined ? sql`` : sql`AND r.name = ${repository}`}
      GROUP BY r.name ORDER BY r.name`.execute(this.db);
    const total = await sql<{ bytes: number; blobs: number }>`SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS blobs FROM blobs WHERE state = 'live'`.execute(this.db);
    const reclaimable = await sql<{ bytes: number; blobs: number }>`
      SELECT COALESCE(SUM(b.size), 0) AS bytes, COUNT(*) AS blobs FROM blobs b WHERE ${blobCollectable(Number.MAX_SAFE_INTEGER)}`.execute(this.db);
    return {
      totalBytes: Number(total.rows[0]?.bytes ?? 0),
      totalBlobs: Number(total.rows[0]?.blobs ?? 0),
      reclaimableBytes: Number(reclaimable.rows[0]?.bytes ?? 0),
      reclaimableBlobs: Number(reclaimable.rows[0]?.blobs ?? 0),
      repositories: perRepo.rows.map((r) => ({ name: r.name, bytes: Number(r.bytes), blobs: Number(r.blobs) })),
    };
  }

  // ---- garbage collection runs ------------------------------------------------

  /**
   * Records a collection to run, or joins one: with `join`, a queued or
   * running collection with the same options whose executor refreshed it
   * since `freshSince` (database clock) is returned instead of a new row
   * (a queued one first: it has not started, so it sees everything done so
   * far). Old finished rows beyond the newest GC_RUNS_KEPT are removed.
   */
  async createGcRun(opts: GcRunOptions, owner: string, join: { freshSince: number } | null): Promise<{ run: GcRunRow; joined: boolean }> {
    return this.writeTransaction(async (trx) => {
      // Taken alone, in a transaction that takes no other lock: outside the repository/blob order, and no cycle with it.
      if (this.dialect === 'postgres') await sql`SELECT pg_advisory_xact_lock(${GC_RUN_LOCKS}, 0)`.execute(trx);
      if (join) {
        const found = await trx
          .selectFrom('gc_runs')
          .selectAll()
          .where('state', 'in', ['queued', 'running'])
          .where('dry_run', '=', opts.dryRun ? 1 : 0)
          .where('grace_ms', '=', opts.graceMs)
          .where('delete_untagged', '=', opts.deleteUntagged ? 1 : 0)
          .where('updated_at', '>=', join.freshSince)
          .orderBy(sql`CASE WHEN state = 'queued' THEN 0 ELSE 1 END`)
          .orderBy('id', 'desc')
          .limit(1)
          .executeTakeFirst();
        if (found) return { run: toGcRun(found), joined: true };
      }
      const t = await this.clock(trx);
      const inserted = await trx
        .insertInto('gc_runs')
        .values({
          state: 'queued',
          dry_run: opts.dryRun ? 1 : 0,
          grace_ms: opts.graceMs,
          delete_untagged: opts.deleteUntagged ? 1 : 0,
          owner,
          created_at: t,
          started_at: null,
          updated_at: t,
          finished_at: null,
          progress: null,
          summary: null,
          error: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      const id = Number(inserted.id);
      await trx.deleteFrom('gc_runs').where('id', '<=', id - GC_RUNS_KEPT).where('state', 'in', ['finished', 'failed']).execute();
      const run = await trx.selectFrom('gc_runs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      return { run: toGcRun(run), joined: false };
    });
  }

  /** Updates a collection's row (and its updated_at, on the database clock). */
  async updateGcRun(
    id: number,
    change: { state?: GcRunRow['state']; started?: boolean; finished?: boolean; progress?: string; summary?: string; error?: string },
  ): Promise<void> {
    await this.writing(async () => {
      const t = await this.clock();
      await this.db
        .updateTable('gc_runs')
        .set({
          updated_at: t,
          ...(change.state !== undefined ? { state: change.state } : {}),
          ...(change.started ? { started_at: t } : {}),
          ...(change.finished ? { finished_at: t } : {}),
          ...(change.progress !== undefined ? { progress: change.progress } : {}),
          ...(change.summary !== undefined ? { summary: change.summary } : {}),
          ...(change.error !== undefined ? { error: change.error } : {}),
        })
        .where('id', '=', id)
        .execute();
    });
  }

  /** Refreshes the rows of collections this process executes, so readers know it is alive. */
  async touchGcRuns(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.writing(async () => {
      const t = await this.clock();
      await this.db.updateTable('gc_runs').set({ updated_at: t }).where('id', 'in', ids).where('state', 'in', ['queued', 'running']).execute();
    });
  }

  /** A collection's row by id, or the newest one (`'latest'`). */
  async gcRun(id: number | 'latest'): Promise<GcRunRow | null> {
    let q = this.db.selectFrom('gc_runs').selectAll();
    q = id === 'latest' ? q.orderBy('id', 'desc').limit(1) : q.where('id', '=', id);
    const row = await q.executeTakeFirst();
    return row ? toGcRun(row) : null;
  }

  /**
   * One repository's size (each distinct blob or manifest counted once, as
   * in storageUsage), blob count and tag count, or null when it holds no
   * manifest. Scoped to the repository: every query goes through its id on
   * an index (repository_blobs' and tags' primary keys, manifests'
   * (repository_id, digest)), never over the whole database
   * (explainRepositoryUsage shows the plans; the metadata suite checks them).
   */
  async repositoryUsage(name: string): Promise<{ bytes: number; blobs: number; tags: number } | null> {
    const repositoryId = await this.repositoryId(name);
    if (repositoryId === null) return null;
    const [size, tags] = this.repositoryUsageQueries(repositoryId);
    const held = await this.db.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).limit(1).executeTakeFirst();
    if (!held) return null;
    const s = (await size.execute(this.db)).rows[0];
    const t = (await tags.execute(this.db)).rows[0];
    return { bytes: Number(s?.bytes ?? 0), blobs: Number(s?.blobs ?? 0), tags: Number(t?.n ?? 0) };
  }

  private repositoryUsageQueries(repositoryId: number) {
    return [
      sql<{ bytes: number; blobs: number }>`
        SELECT COALESCE(SUM(u.size), 0) AS bytes, COUNT(*) AS blobs FROM (
          SELECT rb.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = ${repositoryId} AND b.state = 'live'
          UNION
          SELECT m.digest, m.size FROM manifests m WHERE m.repository_id = ${repositoryId}
        ) u`,
      sql<{ n: number }>`SELECT COUNT(*) AS n FROM tags WHERE repository_id = ${repositoryId}`,
    ] as const;
  }

  /**
   * The plans of repositoryUsage's queries (SQLite's EXPLAIN QUERY PLAN,
   * PostgreSQL's EXPLAIN with sequential scans discouraged, since on a small
   * table a scan is cheaper and would hide whether an index can serve).
   */
  async explainRepositoryUsage(name: string): Promise<string[]> {
    const repositoryId = (await this.repositoryId(name)) ?? 0;
    const plans: string[] = [];
    for (const q of this.repositoryUsageQueries(repositoryId)) {
      const { sql: text, parameters } = q.compile(this.db);
      if (this.dialect === 'sqlite') {
        const rows = await this.db.executeQuery<{ detail: string }>({ ...q.compile(this.db), sql: `EXPLAIN QUERY PLAN ${text}`, parameters });
        plans.push(rows.rows.map((r) => r.detail).join('\n'));
      } else {
        plans.push(
          await this.db.transaction().execute(async (trx) => {
            await sql`SET LOCAL enable_seqscan = off`.execute(trx);
            const rows = await trx.executeQuery<{ 'QUERY PLAN': string }>({ ...q.compile(this.db), sql: `EXPLAIN ${text}`, parameters });
            return rows.rows.map((r) => r['QUERY PLAN']).join('\n');
          }),
        );
      }
    }
    return plans;
  }

  /** Runs a trivial query; used by health checks. */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }
}
