/**
 * WAL checkpoints on a thread of their own (SQLite).
 *
 * In WAL mode every commit appends to the write-ahead log, and SQLite copies
 * the log back into the database file (a checkpoint) once it passes 1000
 * pages, on whichever connection commits next. A checkpoint fsyncs the log
 * and then the database file: 10–15 ms on this kind of disk, during which
 * better-sqlite3 blocks that connection's thread, every request on it, and
 * (under the write gate) every other thread's writes. Under a stream of
 * small pushes that came to one stall every 80 or so blobs.
 *
 * The checkpointer runs them instead, on its own connection in a small
 * worker thread, as PASSIVE checkpoints: they copy what no reader still
 * needs and never wait for a lock, so serving threads go on reading and
 * writing meanwhile. The serving connections keep automatic checkpoints
 * only as a safety net, at a larger log (`SAFETY_NET_PAGES`), should the
 * checkpointer fall behind or die.
 *
 * SQLite starts the log over from its beginning only when a write begins
 * while every frame of it has been copied. Under a steady stream of writes
 * that moment rarely comes, so the log grows up to the safety net; that
 * checkpoint then finds nearly everything copied already, and the next
 * write starts the log over. Measured with 4 KiB pushes: one stall per
 * 700 or so blobs instead of one per 80, and about 10% more blobs/s.
 */
import { Worker } from 'node:worker_threads';

/** What the serving connections' automatic checkpoint is raised to while a checkpointer runs: 32 MiB of 4 KiB pages. */
export const SAFETY_NET_PAGES = 8192;

/** From the checkpoint worker, after each checkpoint that found frames in the log. */
export interface CheckpointReport {
  type: 'checkpointed';
  /** Frames in the log, and how many of them are now in the database file. */
  log: number;
  checkpointed: number;
}

/** From the checkpoint worker when something failed; `fatal` when it could not open the database and has ended. */
export interface CheckpointError {
  type: 'error';
  message: string;
  code?: string;
  fatal: boolean;
}

export interface CheckpointerOptions {
  /** How often the log is looked at while it is growing (default 50 ms); idle, up to 20 times less often. */
  intervalMs?: number;
  /**
   * A checkpoint failed (it is tried again later), or, `fatal`, the thread
   * could not open the database and has ended; the serving connections'
   * automatic checkpoints then keep the log bounded.
   */
  onError?: (err: Error & { code?: string }, fatal: boolean) => void;
}

export class WalCheckpointer {
  /** Checkpoints that found new frames in the log, and what the last one found: frames in the log, and copied of them. */
  readonly stats = { checkpoints: 0, log: 0, checkpointed: 0 };
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  static start(databasePath: string, opts: CheckpointerOptions = {}): WalCheckpointer {
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { path: databasePath, intervalMs: opts.intervalMs ?? 50 },
      // It holds no data of its own: a small heap keeps the thread's memory small.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    const checkpointer = new WalCheckpointer(worker);
    worker.on('message', (m: CheckpointReport | CheckpointError) => {
      if (m.type === 'error') {
        opts.onError?.(Object.assign(new Error(`WAL checkpoint of ${databasePath}: ${m.message}`), { code: m.code }), m.fatal);
        return;
      }
      checkpointer.stats.checkpoints++;
      checkpointer.stats.log = m.log;
      checkpointer.stats.checkpointed = m.checkpointed;
    });
    // Anything else that ends the thread (a bug, running out of its small heap).
    worker.on('error', (err: unknown) => opts.onError?.(err instanceof Error ? err : new Error(`WAL checkpoint thread: ${String(err)}`), true));
    // It never keeps the process alive by itself.
    worker.unref();
    return checkpointer;
  }

  /** Ends the thread after its current checkpoint (the database's last close checkpoints what is left). */
  async stop(): Promise<void> {
    this.worker.postMessage('stop');
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
