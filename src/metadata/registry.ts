/**
 * The registry's queries: repositories and the catalog, blob claims and
 * links (mounts, unlinks), manifests with their references, tags,
 * referrers, and repository deletes. Over the one handle (database.ts):
 * its write gate or retries, its locks in their one order, its clock, its
 * reads cached by data_version and its queries compiled once.
 */
import type { Expression, Kysely, Selectable, SqlBool, Transaction } from 'kysely';
import type { Database, ManifestsTable } from './schema.js';
import { now, ROLL_BACK, type Db, type MetadataDatabase } from './database.js';

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

/** `bytesLost`: the caller's `onlyIf` said no (a reserved blob's bytes may be gone): write them again and retry. */
export type PutManifestResult = { ok: true } | { ok: false; missingBlobs: string[]; missingManifests: string[]; bytesLost?: boolean };

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

/** What a ManifestRecord is read from. */
const MANIFEST_COLUMNS = ['m.id', 'm.digest', 'm.media_type', 'm.size', 'm.artifact_type', 'm.subject_digest', 'm.annotations'] as const;

const BUSY = Symbol('busy');
/** What claimLinkNow's transaction returns: linked, or the bytes were not in place (nothing written). */
const LINKED = { value: true } as const;
const NOT_LINKED = { value: false } as const;
/** Tags, manifests or links a repository delete removes per transaction. */
export const REPOSITORY_DELETE_BATCH = 500;
/** A 'deleting' mark older than this belongs to a collector that died; it may be taken over. */
const STALE_DELETE_MS = 60_000;

/** A blob row marked 'deleting' by a collector that is still at work (not one that died). */
function beingDeleted(row: { state: string; deleting_at: number | null } | undefined, t: number): boolean {
  return row?.state === 'deleting' && Number(row.deleting_at) > t - STALE_DELETE_MS;
}

function toRecord(
  row: Pick<Selectable<ManifestsTable>, 'id' | 'digest' | 'media_type' | 'size' | 'artifact_type' | 'subject_digest' | 'annotations'>,
): ManifestRecord {
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

export class RegistryQueries {
  private readonly db: Kysely<Database>;

  constructor(
    private readonly store: MetadataDatabase,
    /** Fixed when the store is opened: every path that creates a repository inserts it with this visibility. */
    private readonly newVisibility: 'public' | 'private',
  ) {
    this.db = store.db;
  }

  // ---- repositories --------------------------------------------------------

  async repositoryId(name: string, db: Db = this.db): Promise<number | null> {
    const [row] = await this.store.hot('repositoryId', [name], (n) => this.repositoryIdQuery(n), db);
    return row ? Number(row.id) : null;
  }

  async ensureRepository(name: string, db: Db = this.db): Promise<number> {
    const existing = await this.repositoryId(name, db);
    if (existing !== null) return existing;
    const insert = async () => this.store.hot('insertRepository', [name, await this.store.clock(db)], (n, at) => this.insertRepositoryQuery(n, at), db);
    // Inside a transaction the gate is held already (and is not re-entrant).
    await (db === this.db ? this.store.writing(insert) : insert());
    const id = await this.repositoryId(name, db);
    if (id === null) throw new Error(`repository ${name} vanished while being created`);
    return id;
  }

  /** Whether the repository holds a manifest (tagged or not): what the listings count as existing. */
  async holdsManifest(repositoryId: number): Promise<boolean> {
    const held = await this.db.selectFrom('manifests').select('id').where('repository_id', '=', repositoryId).limit(1).executeTakeFirst();
    return held !== undefined;
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
    const rows = await this.store.hot('listRepositories', [page.after ?? '', page.limit], (after, limit) =>
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

  // ---- blobs: claims and links ------------------------------------------------

  /**
   * Runs `body` in a transaction that holds the lock on blob `digest`, after
   * recording the blob as live and just used. `body` makes the bytes present
   * (commits an upload, writes a manifest) and links them. While a garbage
   * collection is deleting this blob's bytes, it waits and retries, so bytes
   * are never committed just before a collector removes them.
   */
  async claimBlob<T>(digest: string, size: number, body: (trx: Transaction<Database>) => Promise<T>, scope: ClaimScope = {}): Promise<T> {
    return this.whileDeleting(digest, () =>
      this.store.writeTransaction(async (trx) => {
        if (scope.repository !== undefined) await this.store.lockRepositories(trx, [scope.repository]);
        await this.store.lockBlobs(trx, [digest, ...(scope.references ?? [])]);
        const [row] = await this.store.hot('blobState', [digest], (d) => this.blobStateQuery(d), trx);
        const t = await this.store.clock(trx);
        if (beingDeleted(row, t)) return BUSY;
        // Under the repository's lock, which the delete's every batch holds: no write slips in between two batches.
        if (scope.repository !== undefined && (await this.beingDeletedRepository(scope.repository, trx))) throw new RepositoryBeingDeletedError(scope.repository);
        if (scope.onlyIf && !(await scope.onlyIf(trx))) return { value: null as T };
        await this.store.hot('recordBlob', [digest, size, t], (d, s, at) => this.recordBlobQuery(d, s, at), trx);
        return { value: await body(trx) };
      }),
    );
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
    if (!this.store.canWriteNow) return null;
    const body = () => {
      const [row] = this.store.runNow('blobState', [digest], (d) => this.blobStateQuery(d));
      const t = now();
      if (beingDeleted(row, t)) return BUSY;
      this.store.runNow('recordBlob', [digest, size, t], (d, s, at) => this.recordBlobQuery(d, s, at));
      if (!present()) throw ROLL_BACK;
      let [repo] = this.store.runNow('repositoryId', [repository], (n) => this.repositoryIdQuery(n));
      if (repo?.deleting_since != null && Number(repo.deleting_since) > t - STALE_DELETE_MS) throw new RepositoryBeingDeletedError(repository);
      if (!repo) {
        // Only when the repository is missing (not on the hot path): was it deleted after this upload began?
        if (startedAt !== undefined) {
          const [gone] = this.store.runNow('repositoryDeletedAt', [repository], (n) => this.repositoryDeletedAtQuery(n));
          if (gone && Number(gone.deleted_at) >= startedAt) throw new RepositoryDeletedError(repository);
        }
        this.store.runNow('insertRepository', [repository, t], (n, at) => this.insertRepositoryQuery(n, at));
        [repo] = this.store.runNow('repositoryId', [repository], (n) => this.repositoryIdQuery(n));
      }
      this.store.runNow('linkBlob', [Number(repo!.id), digest, t], (id, d, at) => this.linkBlobQuery(id, d, at));
      return LINKED;
    };
    // The bytes were found missing (ROLL_BACK): nothing was written.
    return this.whileDeleting(digest, () => this.store.writeNow(body, NOT_LINKED));
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
    const [row] = await this.store.hot('repositoryId', [name], (n) => this.repositoryIdQuery(n), db);
    return row?.deleting_since != null && Number(row.deleting_since) > (await this.store.clock(db)) - STALE_DELETE_MS;
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

  /**
   * For blob stores whose presence check is a network call (object stores),
   * which must not run inside a transaction: records the blob as live and
   * just used *before* its bytes are written, so no collection marks it
   * while they are, and returns the record's generation (its creation
   * time). The claim that then links it asks `stillReserved` under the
   * blob's lock: false means a collection deleted the record (and so maybe
   * the bytes) in between, and the bytes must be written again.
   */
  async reserveBlob(digest: string, size: number): Promise<number> {
    return this.claimBlob(digest, size, async (trx) => Number((await trx.selectFrom('blobs').select('created_at').where('digest', '=', digest).executeTakeFirstOrThrow()).created_at));
  }

  /** Whether the record reserveBlob returned `generation` for is still the live one (see reserveBlob). */
  async stillReserved(trx: Transaction<Database>, digest: string, generation: number): Promise<boolean> {
    const row = await trx.selectFrom('blobs').select(['state', 'created_at']).where('digest', '=', digest).executeTakeFirst();
    return row !== undefined && row.state === 'live' && Number(row.created_at) === generation;
  }

  /** Links a blob into a repository inside a claimBlob transaction whose scope holds that repository. */
  async linkInTransaction(trx: Transaction<Database>, repository: string, digest: string): Promise<void> {
    const repositoryId = await this.ensureRepository(repository, trx);
    await this.store.hot('linkBlob', [repositoryId, digest, await this.store.clock(trx)], (id, d, at) => this.linkBlobQuery(id, d, at), trx);
  }

  /**
   * linkInTransaction for an upload started at `startedAt` (database
   * clock): refused with RepositoryDeletedError when the repository is gone
   * because it was deleted after the upload began, rather than created again.
   */
  async linkUploadInTransaction(trx: Transaction<Database>, repository: string, digest: string, startedAt: number): Promise<void> {
    if ((await this.repositoryId(repository, trx)) === null) {
      const [gone] = await this.store.hot('repositoryDeletedAt', [repository], (n) => this.repositoryDeletedAtQuery(n), trx);
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
    return this.store.cachedRead(`linkedBlob ${repository} ${digest}`, () => this.loadLinkedBlob(repository, digest));
  }

  private async loadLinkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    const [row] = await this.store.hot('linkedBlob', [repository, digest], (repo, d) =>
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
    return this.store.writeTransaction(async (trx) => {
      await this.store.lockRepositories(trx, [repository]);
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
  async putManifest(
    repository: string,
    m: NewManifest,
    tags: string[],
    writeBytes: () => Promise<void> = async () => {},
    onlyIf?: (trx: Transaction<Database>) => Promise<boolean>,
  ): Promise<PutManifestResult> {
    // The scope: the repository (its links, manifests and tags change only
    // under its lock) and every blob the manifest references (a collection
    // marks a blob only under its lock, and finds these references once this commits).
    // `onlyIf` (object stores: the manifest's bytes are still where reserveBlob let them be written) is asked first.
    const lost: PutManifestResult = { ok: false, missingBlobs: [], missingManifests: [], bytesLost: true };
    const result = await this.claimBlob<PutManifestResult>(m.digest, m.size, async (trx) => {
      await writeBytes();
      const repositoryId = await this.ensureRepository(repository, trx);
      const missingBlobs = await this.missing(trx, 'repository_blobs', repositoryId, m.blobs);
      const missingManifests = await this.missing(trx, 'manifests', repositoryId, m.manifests);
      if (missingBlobs.length || missingManifests.length) return { ok: false as const, missingBlobs, missingManifests };

      const t = await this.store.clock(trx);
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
    }, { repository, references: m.blobs, onlyIf });
    return result ?? lost;
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
    return this.store.cachedRead(`manifestByDigest ${repository} ${digest}`, () => this.loadManifestByDigest(repository, digest));
  }

  private async loadManifestByDigest(repository: string, digest: string): Promise<ManifestRecord | null> {
    const [row] = await this.store.hot('manifestByDigest', [repository, digest], (repo, d) =>
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
    return this.store.cachedRead(`manifestByTag ${repository} ${tag}`, () => this.loadManifestByTag(repository, tag));
  }

  private async loadManifestByTag(repository: string, tag: string): Promise<ManifestRecord | null> {
    const [row] = await this.store.hot('manifestByTag', [repository, tag], (repo, t) =>
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
    return this.store.writeTransaction(async (trx) => {
      await this.store.lockRepositories(trx, [repository]);
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
    const r = await this.store.writing(() => this.db.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Tags in byte order, or null when the repository is unknown. A repository
   * is known while it holds a manifest (as in listRepositories and
   * storageUsage): one whose last manifest was deleted is unknown.
   */
  async listTags(repository: string, page: Page): Promise<string[] | null> {
    // SQLite: one synchronous query by the repository's name. A tag points at
    // a manifest, so a page with tags answers everything; only an empty one
    // (an unknown repository, or past the last tag) needs the checks below.
    const found = this.store.columnNow('listTagsByName', [repository, page.after ?? '', page.limit], (name, after, limit) =>
      this.db
        .selectFrom('tags as t')
        .innerJoin('repositories as r', 'r.id', 't.repository_id')
        .select('t.name')
        .where('r.name', '=', name)
        .where('t.name', '>', after)
        .orderBy('t.name')
        .limit(limit as unknown as number),
    );
    if (found && found.length > 0) return found as string[];
    const repositoryId = await this.repositoryId(repository);
    if (repositoryId === null || !(await this.holdsManifest(repositoryId))) return null;
    // '' sorts before every tag, so "after ''" is the first page.
    const args = [repositoryId, page.after ?? '', page.limit];
    const build = (id: string, after: string, limit: string) =>
      this.db.selectFrom('tags').select('name').where('repository_id', '=', id as unknown as number).where('name', '>', after).orderBy('name').limit(limit as unknown as number);
    const names = this.store.columnNow('listTags', args, build as (...markers: string[]) => ReturnType<typeof build>);
    if (names) return names as string[];
    return (await this.store.hot('listTags', args, build as (...markers: string[]) => ReturnType<typeof build>)).map((r) => r.name);
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

  // ---- repository deletes -----------------------------------------------------

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
      this.store.writeTransaction(async (trx) => {
        await this.store.lockRepositories(trx, [name]);
        const repositoryId = await this.repositoryId(name, trx);
        if (repositoryId === null) return null;
        await trx.updateTable('repositories').set({ deleting_since: await this.store.clock(trx) }).where('id', '=', repositoryId).execute();
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
        const at = await this.store.clock(trx);
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
}
