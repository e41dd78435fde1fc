/**
 * Upload purging (storage.maintenance.uploadpurging): removes upload
 * sessions untouched for longer than `age`, and upload files in the blob
 * store that no session owns (left by a crash between the two writes).
 */
import type { Logger } from 'pino';
import type { MetadataStore } from '../metadata/index.js';
import type { BlobStore } from '../storage/index.js';

export interface PurgeResult {
  sessions: number;
  orphanFiles: number;
  dryRun: boolean;
}

export async function purgeUploads(meta: MetadataStore, store: BlobStore, ageMs: number, dryRun: boolean, log?: Logger): Promise<PurgeResult> {
  const cutoff = Date.now() - ageMs;
  const stale = await meta.staleUploads(cutoff);
  let orphanFiles = 0;
  for (const id of stale) {
    if (!dryRun) {
      await store.deleteUpload(id);
      await meta.deleteUpload(id);
    }
  }
  for await (const upload of store.listUploads()) {
    if (upload.modified.getTime() >= cutoff) continue;
    if ((await meta.upload(upload.id)) !== null) continue;
    orphanFiles++;
    if (!dryRun) await store.deleteUpload(upload.id);
  }
  const result = { sessions: stale.length, orphanFiles, dryRun };
  if (stale.length || orphanFiles) log?.info(result, dryRun ? 'upload purge (dry run): would remove abandoned uploads' : 'upload purge: removed abandoned uploads');
  return result;
}

/** Runs purgeUploads every `intervalMs`; returns a stop function. */
export function schedulePurging(meta: MetadataStore, store: BlobStore, opts: { ageMs: number; intervalMs: number; dryRun: boolean }, log?: Logger): () => void {
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      await purgeUploads(meta, store, opts.ageMs, opts.dryRun, log);
    } catch (err) {
      log?.error({ err }, 'upload purge failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), Math.max(1000, opts.intervalMs));
  timer.unref();
  return () => clearInterval(timer);
}
