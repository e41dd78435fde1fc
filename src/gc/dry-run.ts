/**
 * A dry run of a collection: what the real run with the same options would
 * free, worked out on a read-only snapshot of the metadata, without a write.
 *
 * The real run deletes untagged manifests pass after pass (deleting an
 * index's tag frees its children in the next pass, deleting a manifest frees
 * its blobs), so a dry run cannot ask the database "what is collectable now":
 * it replays the same rules (collection.ts's untaggedCondition, blobCollectable
 * and pruneStaleLinks) on the snapshot, deletes in memory, and reports the
 * end state. On a registry nobody writes to meanwhile it reports exactly what
 * the real run then does; under concurrent pushes it is an estimate, as any
 * dry run is.
 *
 * Memory: the replay needs the graph of manifests (ids, digests and the
 * digests each references), so that much is held, about a hundred bytes per
 * manifest and per reference. Blobs, links and stored files are read a page
 * or an entry at a time and never held. The plan it returns lists at most
 * PLAN_LIMIT items of each kind (`truncated` says when more were found; the
 * counts are always whole); `onPlanned` is told of every item.
 */
import { sql } from '../metadata/kysely.js';
import type { MetadataStore } from '../metadata/index.js';
import type { BlobStore } from '../storage/index.js';
import type { CollectionPlan, CollectOptions, CollectSummary, PlannedItem } from './types.js';

export type { CollectionPlan, PlannedItem } from './types.js';

/** Items of each kind a plan lists. */
export const PLAN_LIMIT = 1000;

// The collector's own limits, so the dry run stops where the real run does.
const BATCH = 500;
const MAX_PASSES = 100;

interface SnapManifest {
  id: number;
  repositoryId: number;
  repository: string;
  digest: string;
  size: number;
  createdAt: number;
  subject: string | null;
  tagged: boolean;
  /** Digests this manifest references, by kind. */
  blobs: string[];
  children: string[];
}

const key = (repositoryId: number, digest: string) => `${repositoryId}\0${digest}`;

function bump(m: Map<string, number>, k: string, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

export async function planCollection(
  meta: MetadataStore,
  store: BlobStore,
  opts: CollectOptions,
  started: number,
): Promise<{ summary: CollectSummary; plan: CollectionPlan }> {
  // On the database's clock, as the real run counts it.
  const cutoff = (await meta.clock()) - opts.graceMs;
  const db = meta.db;
  const progress = opts.progress ?? (() => {});

  const manifestRows = await sql<{ id: number; repository_id: number; name: string; digest: string; size: number; created_at: number; subject_digest: string | null; tagged: number }>`
    SELECT m.id, m.repository_id, r.name, m.digest, m.size, m.created_at, m.subject_digest,
           CASE WHEN EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) THEN 1 ELSE 0 END AS tagged
    FROM manifests m JOIN repositories r ON r.id = m.repository_id ORDER BY m.id`.execute(db);
  const manifests = new Map<number, SnapManifest>();
  for (const r of manifestRows.rows) {
    manifests.set(Number(r.id), {
      id: Number(r.id),
      repositoryId: Number(r.repository_id),
      repository: r.name,
      digest: r.digest,
      size: Number(r.size),
      createdAt: Number(r.created_at),
      subject: r.subject_digest,
      tagged: Number(r.tagged) === 1,
      blobs: [],
      children: [],
    });
  }
  const refRows = await db.selectFrom('manifest_references').select(['manifest_id', 'digest', 'kind']).execute();
  for (const r of refRows) {
    const m = manifests.get(Number(r.manifest_id));
    if (!m) continue; // written after the manifests were read
    if (r.kind === 'blob') m.blobs.push(r.digest);
    else if (r.kind === 'manifest') m.children.push(r.digest);
  }

  // Indexes over the manifests still present, kept up to date as the simulation deletes.
  const childRefs = new Map<string, number>(); // repository + digest → manifests listing it as a child
  const referrers = new Map<string, number>(); // repository + digest → manifests naming it as subject
  const present = new Map<string, number>(); // repository + digest → manifests with that digest
  const blobRefs = new Map<string, number>(); // digest → blob references, any repository
  const repoBlobRefs = new Map<string, number>(); // repository + digest → blob references in that repository
  const manifestDigests = new Map<string, number>(); // digest → manifests with that digest, any repository
  const account = (m: SnapManifest, by: number) => {
    for (const c of m.children) bump(childRefs, key(m.repositoryId, c), by);
    if (m.subject) bump(referrers, key(m.repositoryId, m.subject), by);
    bump(present, key(m.repositoryId, m.digest), by);
    for (const b of m.blobs) {
      bump(blobRefs, b, by);
      bump(repoBlobRefs, key(m.repositoryId, b), by);
    }
    bump(manifestDigests, m.digest, by);
  };
  for (const m of manifests.values()) account(m, 1);

  const plan: CollectionPlan = { manifests: [], blobs: [], orphans: [], truncated: false };
  const counts = { manifests: 0, blobs: 0, orphans: 0, bytes: 0 };
  const planned = (item: PlannedItem) => {
    opts.onPlanned?.(item);
    const list = item.kind === 'manifest' ? plan.manifests : item.kind === 'blob' ? plan.blobs : plan.orphans;
    const { kind: _, ...entry } = item;
    if (list.length < PLAN_LIMIT) (list as object[]).push(entry);
    else plan.truncated = true;
  };
  if (opts.deleteUntagged) {
    const collectable = (m: SnapManifest) =>
      m.createdAt < cutoff &&
      !m.tagged &&
      !childRefs.has(key(m.repositoryId, m.digest)) &&
      !referrers.has(key(m.repositoryId, m.digest)) &&
      (m.subject === null || !present.has(key(m.repositoryId, m.subject)));
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const batch: SnapManifest[] = [];
      for (const m of manifests.values()) {
        if (collectable(m)) batch.push(m);
        if (batch.length === BATCH) break;
      }
      if (batch.length === 0) break;
      for (const m of batch) {
        manifests.delete(m.id);
        account(m, -1);
        counts.manifests++;
        planned({ kind: 'manifest', repository: m.repository, digest: m.digest, size: m.size });
      }
      progress({ phase: 'manifests', done: counts.manifests });
    }
  }

  // Links and blobs a page at a time (keyset pagination), never all at once.
  let linksPruned = 0;
  for (let after = { repositoryId: -1, digest: '' }; ; ) {
    const page = await db
      .selectFrom('repository_blobs')
      .select(['repository_id', 'digest'])
      .where('created_at', '<', cutoff)
      .where((eb) => eb.or([eb('repository_id', '>', after.repositoryId), eb.and([eb('repository_id', '=', after.repositoryId), eb('digest', '>', after.digest)])]))
      .orderBy('repository_id')
      .orderBy('digest')
      .limit(BATCH)
      .execute();
    linksPruned += page.filter((l) => !repoBlobRefs.has(key(Number(l.repository_id), l.digest))).length;
    if (page.length < BATCH) break;
    const last = page[page.length - 1]!;
    after = { repositoryId: Number(last.repository_id), digest: last.digest };
  }

  let blobsMarked = 0;
  for (let after = ''; ; ) {
    const page = await db.selectFrom('blobs').select(['digest', 'size', 'state', 'last_used_at']).where('digest', '>', after).orderBy('digest').limit(BATCH).execute();
    for (const b of page) {
      const referenced = blobRefs.has(b.digest) || manifestDigests.has(b.digest);
      if (referenced) blobsMarked++;
      else if (b.state === 'deleting' || Number(b.last_used_at) < cutoff) {
        counts.blobs++;
        counts.bytes += Number(b.size);
        planned({ kind: 'blob', digest: b.digest, size: Number(b.size) });
      }
    }
    if (page.length < BATCH) break;
    after = page[page.length - 1]!.digest;
  }
  progress({ phase: 'blobs', done: counts.blobs, total: counts.blobs });

  for await (const blob of store.list()) {
    if (blob.modified && blob.modified.getTime() >= cutoff) continue;
    if (await meta.collection.blobRecorded(blob.digest)) continue;
    counts.orphans++;
    counts.bytes += blob.size;
    planned({ kind: 'orphan', digest: blob.digest, size: blob.size });
  }

  const summary: CollectSummary = {
    dryRun: true,
    graceMs: opts.graceMs,
    deleteUntagged: opts.deleteUntagged,
    blobsMarked,
    blobsEligible: counts.blobs,
    blobsDeleted: 0,
    bytesReclaimed: counts.bytes,
    manifestsDeleted: counts.manifests,
    linksPruned,
    orphanFilesDeleted: counts.orphans,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
  };
  return { summary, plan };
}
