/**
 * The collector's queries: untagged manifests, blob candidates, the two
 * phases of a blob's delete (mark, forget), stale links, orphans, the
 * garbage collection runs' rows, and storage usage. Over the one handle
 * (database.ts), in the same lock order as the registry's writes, which
 * they race (docs/gc.md).
 */
import type { Kysely, Selectable } from 'kysely';
import { sql } from './kysely.js';
import type { Database, GcRunsTable } from './schema.js';
import type { Db, MetadataDatabase } from './database.js';
import type { RegistryQueries } from './registry.js';

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

/** Stale links removed per transaction by pruneStaleLinks. */
const PRUNE_BATCH = 1000;
/** Garbage collection rows kept once finished (the newest). */
const GC_RUNS_KEPT = 100;

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

function toGcRun(r: Selectable<GcRunsTable>): GcRunRow {
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

export class CollectionQueries {
  private readonly db: Kysely<Database>;

  constructor(
    private readonly store: MetadataDatabase,
    /** For repositories' ids. */
    private readonly registry: RegistryQueries,
  ) {
    this.db = store.db;
  }

  // ---- garbage collection -----------------------------------------------------

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
    return this.store.writeTransaction(async (trx) => {
      const owner = await trx.selectFrom('manifests as m').innerJoin('repositories as r', 'r.id', 'm.repository_id').select('r.name').where('m.id', '=', id).executeTakeFirst();
      if (!owner) return false;
      // A repository keeps its id while it exists; a deleted one takes its manifests with it.
      await this.store.lockRepositories(trx, [owner.name]);
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
    let repositories = this.store.dialect === 'postgres' ? await linkedIn(this.db) : [];
    // Each round adds a repository that linked the blob meanwhile; one that
    // keeps being linked anew is in use: it is left for the next collection.
    for (let round = 0; round < 20; round++) {
      type Marked = { again: false; repositories: string[]; size: number } | { again: true; repos: string[] } | null;
      const result = await this.store.writeTransaction(async (trx): Promise<Marked> => {
        await this.store.lockRepositories(trx, repositories);
        await this.store.lockBlobs(trx, [digest]);
        const row = (await sql<{ size: number }>`SELECT b.size FROM blobs b WHERE b.digest = ${digest} AND ${blobCollectable(cutoff)}`.execute(trx)).rows[0];
        if (!row) return null;
        const repos = await linkedIn(trx);
        if (this.store.dialect === 'postgres' && repos.some((r) => !repositories.includes(r))) return { again: true, repos };
        await trx.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
        await trx.updateTable('blobs').set({ state: 'deleting', deleting_at: await this.store.clock(trx) }).where('digest', '=', digest).execute();
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
    await this.store.writeTransaction(async (trx) => {
      await this.store.lockBlobs(trx, [digest]);
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
    if (this.store.dialect !== 'postgres') {
      for (;;) {
        const n = await this.store.writeTransaction((trx) => deleteBatch(trx));
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
          const n = await this.store.writeTransaction(async (trx) => {
            await this.store.lockRepositories(trx, [repo.name]);
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
    return this.store.writeTransaction(async (trx) => {
      await this.store.lockBlobs(trx, [digest]);
      const t = await this.store.clock(trx);
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

  // ---- garbage collection runs ------------------------------------------------

  /**
   * Records a collection to run, or joins one: with `join`, a queued or
   * running collection with the same options whose executor refreshed it
   * since `freshSince` (database clock) is returned instead of a new row
   * (a queued one first: it has not started, so it sees everything done so
   * far). Old finished rows beyond the newest GC_RUNS_KEPT are removed.
   */
  async createGcRun(opts: GcRunOptions, owner: string, join: { freshSince: number } | null): Promise<{ run: GcRunRow; joined: boolean }> {
    return this.store.writeTransaction(async (trx) => {
      await this.store.lockGcRuns(trx);
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
      const t = await this.store.clock(trx);
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
    await this.store.writing(async () => {
      const t = await this.store.clock();
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
    await this.store.writing(async () => {
      const t = await this.store.clock();
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

  // ---- storage usage ----------------------------------------------------------

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

  /**
   * One repository's size (each distinct blob or manifest counted once, as
   * in storageUsage), blob count and tag count, or null when it holds no
   * manifest. Scoped to the repository: every query goes through its id on
   * an index (repository_blobs' and tags' primary keys, manifests'
   * (repository_id, digest)), never over the whole database
   * (explainRepositoryUsage shows the plans; the metadata suite checks them).
   */
  async repositoryUsage(name: string): Promise<{ bytes: number; blobs: number; tags: number } | null> {
    const repositoryId = await this.registry.repositoryId(name);
    if (repositoryId === null || !(await this.registry.holdsManifest(repositoryId))) return null;
    const [size, tags] = this.repositoryUsageQueries(repositoryId);
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
    const repositoryId = (await this.registry.repositoryId(name)) ?? 0;
    const plans: string[] = [];
    for (const q of this.repositoryUsageQueries(repositoryId)) {
      const { sql: text, parameters } = q.compile(this.db);
      if (this.store.dialect === 'sqlite') {
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
}
