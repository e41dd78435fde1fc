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
import type { GcRunRow, MetadataStore } from '../metadata/index.js';
import type { BlobStore } from '../storage/index.js';
import { randomUUID } from 'node:crypto';
import { planCollection } from './dry-run.js';
import type { CollectOptions, CollectSummary, Progress } from './types.js';

export type { CollectionPlan, CollectOptions, CollectSummary, PlannedItem, Progress } from './types.js';
import { every } from './schedule.js';

/** A collection as the API reports it: recorded in the database, so any thread or process can tell. */
export interface CollectionRun {
  id: number;
  /** queued (waiting for this process's previous collection), running, finished, or failed (an error, a stop, or a process that died). */
  state: 'queued' | 'running' | 'finished' | 'failed';
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: Progress | null;
  summary: CollectSummary | null;
  error: string | null;
}

/** Candidates, manifests and events handled per batch: what a collection holds in memory at once. */
export const BATCH = 500;
/** How often a collector refreshes the rows of its runs, and after how long without that a run counts as abandoned. */
const HEARTBEAT_MS = 5_000;
export const ABANDONED_MS = 60_000;
/** Progress is written to the run's row at most this often. */
const PROGRESS_WRITE_MS = 1_000;

/** Thrown inside a run when the collector is stopped (server shut down): the run ends as failed, between two batches. */
class Stopped extends Error {
  constructor() {
    super('stopped: the process shut down before the collection finished');
  }
}

type RunOptions = Omit<CollectOptions, 'progress' | 'onPlanned'>;

export class GarbageCollector {
  /** Which collector executes a run (one per thread of each process). */
  private readonly owner = randomUUID();
  /** Runs of this collector execute one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** This collector's queued and running runs, by id. */
  private readonly local = new Map<number, Promise<CollectSummary>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Told about every finished collection (metrics). */
  onCollected?: (summary: CollectSummary) => void;

  constructor(
    private readonly meta: MetadataStore,
    private readonly store: BlobStore,
    private readonly log?: Logger,
    private readonly events?: () => EventSink | undefined,
  ) {}

  /**
   * Runs a collection of its own and waits for it (the offline command, the
   * scheduler): after any this process is running, recorded like every run.
   */
  async collect(opts: CollectOptions): Promise<CollectSummary> {
    const { run } = await this.meta.collection.createGcRun(opts, this.owner, null);
    return this.enqueue(run.id, opts);
  }

  /**
   * Starts a collection, or joins one with the same options that any
   * process has queued or running, and returns its record at once (the
   * API's POST /berth/v1/gc). `wait` then waits for it.
   */
  async start(opts: RunOptions): Promise<CollectionRun> {
    if (this.stopped) throw new Stopped();
    const freshSince = (await this.meta.clock()) - ABANDONED_MS;
    const { run, joined } = await this.meta.collection.createGcRun(opts, this.owner, { freshSince });
    if (!joined) this.enqueue(run.id, opts).catch((err) => this.log?.error({ err, gcRun: run.id }, 'garbage collection failed')); // and recorded in the run's row
    return describe(run, freshSince);
  }

  /** A run's record, or the newest one's; null when there is none. */
  async status(id: number | 'latest'): Promise<CollectionRun | null> {
    const row = await this.meta.collection.gcRun(id);
    return row ? describe(row, (await this.meta.clock()) - ABANDONED_MS) : null;
  }

  /**
   * Waits until a run is finished or failed, at most `timeoutMs`, and
   * returns its record (still queued or running when the time ran out).
   * A run of this collector is awaited; another's is read again now and then.
   */
  async wait(id: number, timeoutMs: number): Promise<CollectionRun | null> {
    const deadline = Date.now() + timeoutMs;
    const mine = this.local.get(id);
    if (mine) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([mine.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    for (let pause = 20; ; pause = Math.min(500, pause * 2)) {
      const run = await this.status(id);
      if (!run || run.state === 'finished' || run.state === 'failed' || Date.now() >= deadline) return run;
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
    }
  }

  /** Stops taking runs; the one running ends at its next batch (as failed), queued ones fail. Waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.local.values()]);
  }

  private enqueue(id: number, opts: CollectOptions): Promise<CollectSummary> {
    const done = this.queue.then(() => this.execute(id, opts));
    this.queue = done.catch(() => {});
    this.local.set(id, done);
    this.heartbeat ??= setInterval(() => {
      this.meta.collection.touchGcRuns([...this.local.keys()]).catch((err) => this.log?.warn({ err }, 'could not refresh garbage collection runs'));
    }, HEARTBEAT_MS).unref();
    const forget = () => {
      this.local.delete(id);
      if (this.local.size === 0 && this.heartbeat) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      }
    };
    done.then(forget, forget);
    return done;
  }

  private async execute(id: number, opts: CollectOptions): Promise<CollectSummary> {
    try {
      if (this.stopped) throw new Stopped();
      await this.meta.collection.updateGcRun(id, { state: 'running', started: true });
      let lastWrite = 0;
      const progress = (p: Progress) => {
        opts.progress?.(p);
        const now = Date.now();
        if (now - lastWrite < PROGRESS_WRITE_MS) return;
        lastWrite = now;
        this.meta.collection.updateGcRun(id, { progress: JSON.stringify(p) }).catch((err) => this.log?.warn({ err }, 'could not record garbage collection progress'));
      };
      const summary = await this.run({ ...opts, progress });
      await this.meta.collection.updateGcRun(id, { state: 'finished', finished: true, summary: JSON.stringify(summary) });
      return summary;
    } catch (err) {
      await this.meta.collection.updateGcRun(id, { state: 'failed', finished: true, error: (err as Error).message ?? String(err) }).catch(() => {});
      throw err;
    }
  }

  private checkStopped(): void {
    if (this.stopped) throw new Stopped();
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
    const progress = opts.progress ?? (() => {});
    // Events leave a batch at a time: a collection holds at most BATCH of them.
    const emit = async (events: RegistryEvent[]) => {
      const sink = this.events?.();
      if (sink && events.length) await sink.emit(events).catch((err) => this.log?.error({ err }, 'could not queue garbage collection events'));
    };

    if (opts.deleteUntagged) {
      for (let pass = 0; pass < 100; pass++) {
        this.checkStopped();
        const batch = await this.meta.collection.untaggedManifests(cutoff, BATCH);
        if (batch.length === 0) break;
        let freed = 0;
        const events: RegistryEvent[] = [];
        for (const m of batch) {
          if (await this.meta.collection.deleteUntaggedManifest(m.id, cutoff)) {
            freed++;
            events.push(deleteEvent(m.repository, { digest: m.digest, mediaType: m.mediaType, size: m.size }));
          }
        }
        await emit(events);
        summary.manifestsDeleted += freed;
        progress({ phase: 'manifests', done: summary.manifestsDeleted });
        if (freed === 0) break;
      }
    }

    this.checkStopped();
    summary.linksPruned = await this.meta.collection.pruneStaleLinks(cutoff);
    summary.blobsMarked = await this.meta.collection.referencedBlobCount();

    // Candidates a page at a time, in digest order: a page is deleted before the next is read.
    // (No count first: it would cost another pass over every blob, for a progress bar's total.)
    progress({ phase: 'blobs', done: 0 });
    let after = '';
    for (;;) {
      this.checkStopped();
      const batch = await this.meta.collection.blobCandidates(cutoff, BATCH, after);
      if (batch.length === 0) break;
      after = batch[batch.length - 1]!.digest;
      summary.blobsEligible += batch.length;
      const events: RegistryEvent[] = [];
      for (const c of batch) {
        const marked = await this.meta.collection.markBlobDeleting(c.digest, cutoff);
        if (!marked) continue;
        await this.store.delete(c.digest);
        await this.meta.collection.forgetBlob(c.digest);
        summary.blobsDeleted++;
        summary.bytesReclaimed += marked.size;
        for (const repository of marked.repositories) events.push(deleteEvent(repository, { digest: c.digest, mediaType: 'application/octet-stream', size: marked.size }));
      }
      await emit(events);
      progress({ phase: 'blobs', done: summary.blobsEligible });
    }

    let listed = 0;
    for await (const blob of this.store.list()) {
      if (++listed % BATCH === 0) this.checkStopped();
      if (blob.modified && blob.modified.getTime() >= cutoff) continue;
      if (await this.meta.collection.blobRecorded(blob.digest)) continue;
      if (!(await this.meta.collection.claimOrphan(blob.digest, blob.size))) continue;
      await this.store.delete(blob.digest);
      await this.meta.collection.forgetBlob(blob.digest);
      summary.orphanFilesDeleted++;
      summary.bytesReclaimed += blob.size;
    }

    summary.durationMs = Date.now() - started;
    this.onCollected?.(summary);
    this.log?.info({ gc: summary }, 'garbage collection finished');
    return summary;
  }
}

/** A run's row as the API shows it; a queued or running run not refreshed since `freshSince` was abandoned by a process that died. */
function describe(row: GcRunRow, freshSince: number): CollectionRun {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  const abandoned = (row.state === 'queued' || row.state === 'running') && row.updatedAt < freshSince;
  return {
    id: row.id,
    state: abandoned ? 'failed' : row.state,
    dryRun: row.dryRun,
    graceMs: row.graceMs,
    deleteUntagged: row.deleteUntagged,
    createdAt: iso(row.createdAt)!,
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    progress: row.progress ? (JSON.parse(row.progress) as Progress) : null,
    summary: row.summary ? (JSON.parse(row.summary) as CollectSummary) : null,
    error: abandoned ? 'abandoned: the process running it stopped' : row.error,
  };
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
    // Joins a collection with the same options already queued or running (in any process) rather than stacking another.
    gc.start({ ...opts, dryRun: false }).catch((err) => log?.error({ err }, 'garbage collection failed'));
  });
}
