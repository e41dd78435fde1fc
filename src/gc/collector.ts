/**
 * Garbage collection over the metadata database, safe to run while pushes
 * and pulls go on (no read-only mode, no restart).
 *
 * 1. delete-untagged (optional): untagged manifests that nothing keeps
 *    (no tag, not a child of a kept index, no referrers, not a referrer of a
 *    present subject), repeated until nothing more is freed;
 * 2. links older than the grace period that no manifest of their repository
 *    references are removed;
 * 3. blobs no manifest references and unused for the grace period are
 *    deleted in two phases under the blob's lock (mark 'deleting' and unlink,
 *    remove bytes, forget), which is what makes a concurrent push either keep
 *    the blob or wait and store it again;
 * 4. bytes in the store the database has no record of (left by a crash) and
 *    older than the grace period are removed.
 */
import type { Logger } from 'pino';
import type { EventSink, RegistryEvent } from '../events/index.js';
import type { MetadataStore } from '../metadata/index.js';
import type { BlobStore } from '../storage/index.js';
import { randomUUID } from 'node:crypto';
import { planCollection, type CollectionPlan } from './dry-run.js';
import { every } from './schedule.js';

export interface CollectOptions {
  /** Blobs and manifests younger than this are kept (ms). */
  graceMs: number;
  deleteUntagged: boolean;
  dryRun: boolean;
  /** Called as work proceeds (for progress bars). */
  progress?: (p: { phase: string; done: number; total?: number }) => void;
}

export interface CollectSummary {
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  /** Blobs a manifest references (kept). */
  blobsMarked: number;
  /** Blobs found unreferenced and past the grace period. */
  blobsEligible: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  manifestsDeleted: number;
  linksPruned: number;
  orphanFilesDeleted: number;
  startedAt: string;
  durationMs: number;
  /** A dry run only: the manifests, blobs and orphaned files the real run would delete. */
  plan?: CollectionPlan;
}

const BATCH = 500;

export class GarbageCollector {
  private running: Promise<CollectSummary> | null = null;
  /** Told about every finished collection (metrics). */
  onCollected?: (summary: CollectSummary) => void;

  constructor(
    private readonly meta: MetadataStore,
    private readonly store: BlobStore,
    private readonly log?: Logger,
    private readonly events?: () => EventSink | undefined,
  ) {}

  /** Runs a collection; concurrent calls in one process share the run in progress. */
  collect(opts: CollectOptions): Promise<CollectSummary> {
    if (this.running) return this.running;
    this.running = this.run(opts).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(opts: CollectOptions): Promise<CollectSummary> {
    const started = Date.now();
    if (opts.dryRun) {
      // Worked out on a snapshot, so it counts what deleting untagged manifests would free too.
      const { summary, plan } = await planCollection(this.meta, this.store, opts, started);
      this.onCollected?.(summary);
      this.log?.info({ gc: summary }, 'garbage collection (dry run) finished');
      return { ...summary, plan };
    }
    // The grace period is counted on the database's clock, as every use of a blob is recorded.
    const cutoff = (await this.meta.clock()) - opts.graceMs;
    const summary: CollectSummary = {
      dryRun: opts.dryRun,
      graceMs: opts.graceMs,
      deleteUntagged: opts.deleteUntagged,
      blobsMarked: 0,
      blobsEligible: 0,
      blobsDeleted: 0,
      bytesReclaimed: 0,
      manifestsDeleted: 0,
      linksPruned: 0,
      orphanFilesDeleted: 0,
      startedAt: new Date(started).toISOString(),
      durationMs: 0,
    };
    const events: RegistryEvent[] = [];
    const progress = opts.progress ?? (() => {});

    if (opts.deleteUntagged) {
      for (let pass = 0; pass < 100; pass++) {
        const batch = await this.meta.untaggedManifests(cutoff, BATCH);
        if (batch.length === 0) break;
        let freed = 0;
        for (const m of batch) {
          if (opts.dryRun) {
            freed++;
            continue;
          }
          if (await this.meta.deleteUntaggedManifest(m.id, cutoff)) {
            freed++;
            events.push(deleteEvent(m.repository, { digest: m.digest, mediaType: m.mediaType, size: m.size }));
          }
        }
        summary.manifestsDeleted += freed;
        progress({ phase: 'manifests', done: summary.manifestsDeleted });
        // A dry run cannot see what deleting would free next; one pass is all it can report.
        if (opts.dryRun || freed === 0) break;
      }
    }

    if (!opts.dryRun) summary.linksPruned = await this.meta.pruneStaleLinks(cutoff);
    summary.blobsMarked = await this.meta.referencedBlobCount();

    let after = '';
    const candidates: { digest: string; size: number }[] = [];
    for (;;) {
      const batch = await this.meta.blobCandidates(cutoff, BATCH, after);
      if (batch.length === 0) break;
      candidates.push(...batch);
      after = batch[batch.length - 1]!.digest;
    }
    summary.blobsEligible = candidates.length;
    progress({ phase: 'blobs', done: 0, total: candidates.length });
    for (const [i, c] of candidates.entries()) {
      if (opts.dryRun) {
        summary.bytesReclaimed += c.size;
      } else {
        const marked = await this.meta.markBlobDeleting(c.digest, cutoff);
        if (marked) {
          await this.store.delete(c.digest);
          await this.meta.forgetBlob(c.digest);
          summary.blobsDeleted++;
          summary.bytesReclaimed += marked.size;
          for (const repository of marked.repositories) events.push(deleteEvent(repository, { digest: c.digest, mediaType: 'application/octet-stream', size: marked.size }));
        }
      }
      progress({ phase: 'blobs', done: i + 1, total: candidates.length });
    }

    for await (const blob of this.store.list()) {
      if (blob.modified && blob.modified.getTime() >= cutoff) continue;
      if (await this.meta.blobRecorded(blob.digest)) continue;
      if (!opts.dryRun) {
        if (!(await this.meta.claimOrphan(blob.digest, blob.size))) continue;
        await this.store.delete(blob.digest);
        await this.meta.forgetBlob(blob.digest);
      }
      summary.orphanFilesDeleted++;
      summary.bytesReclaimed += blob.size;
    }

    summary.durationMs = Date.now() - started;
    const sink = this.events?.();
    if (sink && events.length) await sink.emit(events).catch((err) => this.log?.error({ err }, 'could not queue garbage collection events'));
    this.onCollected?.(summary);
    this.log?.info({ gc: summary }, opts.dryRun ? 'garbage collection (dry run) finished' : 'garbage collection finished');
    return summary;
  }
}

function deleteEvent(repository: string, target: { digest: string; mediaType: string; size: number }): RegistryEvent {
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action: 'delete',
    target: { ...target, length: target.size, repository },
    actor: { name: 'garbage-collector' },
  };
}

/** Runs a collection every `intervalMs`; returns a stop function. */
export function scheduleCollection(gc: GarbageCollector, intervalMs: number, opts: Omit<CollectOptions, 'dryRun' | 'progress'>, log?: Logger): () => void {
  return every(intervalMs, () => {
    gc.collect({ ...opts, dryRun: false }).catch((err) => log?.error({ err }, 'garbage collection failed'));
  });
}
