/**
 * The checkpointer's thread (see checkpointer.ts): its own connection to the
 * database, a PASSIVE checkpoint whenever the log has grown, and nothing else.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Sqlite from 'better-sqlite3';
import type { CheckpointReport } from './checkpointer.js';

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const port = parentPort!;
const db = new Sqlite(path, { fileMustExist: true });
// It only checkpoints; it must never run an automatic one of its own or wait on a lock.
db.pragma('wal_autocheckpoint = 0');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');

let delay = intervalMs;
let last = '';
let timer: NodeJS.Timeout | undefined;

function run(): void {
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
  timer = setTimeout(run, delay);
}

port.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearTimeout(timer);
  db.close();
  port.close();
});
timer = setTimeout(run, delay);
