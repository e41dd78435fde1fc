/**
 * Upload purging (storage.maintenance.uploadpurging): removes uploads left
 * untouched for longer than `age`. An upload is its file in the blob store,
 * and every append moves the file's modification time, so an upload that is
 * still receiving chunks is never purged.
 */
import type { Logger } from 'pino';
import type { BlobStore } from '../storage/index.js';
import { every } from './schedule.js';

export interface PurgeResult {
  uploads: number;
  dryRun: boolean;
}

export async function purgeUploads(store: BlobStore, ageMs: number, dryRun: boolean, log?: Logger): Promise<PurgeResult> {
  const cutoff = Date.now() - ageMs;
  let uploads = 0;
  for await (const upload of store.listUploads()) {
    if (upload.modified.getTime() >= cutoff) continue;
    if (dryRun) {
      uploads++;
      continue;
    }
    // One being written to right now holds its lock: it is not abandoned.
    const release = await store.lockUpload(upload.id).catch(() => null);
    if (!release) continue;
    try {
      await store.deleteUpload(upload.id);
      uploads++;
    } finally {
      await release();
    }
  }
  const result = { uploads, dryRun };
  if (uploads) log?.info(result, dryRun ? 'upload purge (dry run): would remove abandoned uploads' : 'upload purge: removed abandoned uploads');
  return result;
}

/** Uploads in progress (for the metrics). */
export async function countUploads(store: BlobStore): Promise<number> {
  let count = 0;
  for await (const _ of store.listUploads()) count++;
  return count;
}

/** Runs purgeUploads every `intervalMs`; returns a stop function. */
export function schedulePurging(store: BlobStore, opts: { ageMs: number; intervalMs: number; dryRun: boolean }, log?: Logger): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await purgeUploads(store, opts.ageMs, opts.dryRun, log);
    } catch (err) {
      log?.error({ err }, 'upload purge failed');
    } finally {
      running = false;
    }
  };
  return every(opts.intervalMs, () => void tick());
}
