/**
 * The race test with online garbage collection: the registry-race load
 * (concurrent pushers sharing layers, mounts, indexes, deleters by tag and by
 * digest) while collections at a grace of 0 s run back to back, on SQLite and
 * on PostgreSQL, one process and two. A push may be refused cleanly
 * (MANIFEST_BLOB_UNKNOWN: a blob was collected between upload and manifest)
 * and pushed again, as a client would; what must never happen is a 5xx, a
 * tagged manifest whose blobs or children are gone, or an acknowledged push lost.
 */
import { raceCases } from '../support/race-load.js';

raceCases('garbage collection races with pushes and deletes', {
  collect: true,
  durationMs: Number(process.env.BERTH_RACE_MS ?? 20_000),
  env: { REGISTRY_BERTH_GC_GRACE: '0s' },
});
