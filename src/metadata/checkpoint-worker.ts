/**
 * The checkpointer's thread (see checkpointer.ts): its own connection to the
 * database, a PASSIVE checkpoint whenever the log has grown, and nothing else.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import type { CheckpointReport, CheckpointError } from './checkpointer.js';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const port = parentPort!;
/** How long to wait after a failed checkpoint before the next try. */
const AFTER_FAILURE_MS = Math.max(intervalMs * 20, 1000);

function report(err: unknown, fatal: boolean): void {
  const e = err as { message?: unknown; code?: unknown };
  port.postMessage({ type: 'error', message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined, fatal } satisfies CheckpointError);
}

let db: Sqlite.Database;
let checkpoint: Sqlite.Statement;
try {
  db = new Sqlite(path, { fileMustExist: true });
  // It only checkpoints; it must never run an automatic one of its own or wait on a lock.
  db.pragma('wal_autocheckpoint = 0');
  checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
} catch (err) {
  // Without a connection there is nothing to do: the serving connections' safety net takes over.
  report(err, true);
  port.close();
  process.exit(1);
}

let delay = intervalMs;
let last = '';
let timer: NodeJS.Timeout | undefined;

function run(): void {
  try {
    const { log, checkpointed } = checkpoint.get() as { busy: number; log: number; checkpointed: number };
    // log = -1: the database is not in WAL mode (yet); log = 0: the log was just restarted.
    const now = `${log} ${checkpointed}`;
    if (log > 0 && now !== last) {
      port.postMessage({ type: 'checkpointed', log, checkpointed } satisfies CheckpointReport);
      delay = intervalMs;
    } else {
      // Idle: look less often, up to 20 times the interval.
      delay = Math.min(delay * 2, intervalMs * 20);
    }
    last = now;
  } catch (err) {
    // An I/O error, say: reported, and tried again later; a checkpoint that failed changed nothing.
    report(err, false);
    delay = AFTER_FAILURE_MS;
  }
  timer = setTimeout(run, delay);
}

port.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearTimeout(timer);
  db.close();
  port.close();
});
timer = setTimeout(run, delay);
