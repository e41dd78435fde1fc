/**
 * A worker for threads.test.ts: answers with its index; `/crash` ends it with
 * an uncaught exception. Like serve-worker.ts, it starts only once released;
 * it says on the 'threads-fixture-loaded' BroadcastChannel that it is loaded
 * and waiting. With workerData.holdReady it says it is ready only when the
 * test says so on another channel, as a worker still starting its app.
 * With workerData.holdStop it ignores a stop, as a worker whose drain hangs.
 * workerData.failStarts (an Int32 in shared memory) counts starts that fail
 * once released, as a worker whose app cannot start (shared by every worker).
 */
import http from 'node:http';
import { BroadcastChannel, parentPort, threadId, workerData } from 'node:worker_threads';
import { adoptConnection, released, type FromWorker, type ToWorker, type WorkerData } from './threads.js';

const { index, holdReady, holdStop, failStarts } = workerData as WorkerData & { holdReady?: boolean; holdStop?: boolean; failStarts?: SharedArrayBuffer };
const loaded = new BroadcastChannel('threads-fixture-loaded');
loaded.postMessage(index);
loaded.close();
await released(parentPort!);
if (failStarts && Atomics.sub(new Int32Array(failStarts), 0, 1) > 0) throw new Error('fixture worker failed to start on purpose');
const server = http.createServer((req, res) => {
  if (req.url === '/crash') {
    setImmediate(() => {
      throw new Error('fixture worker crashed on purpose');
    });
    return;
  }
  res.end(JSON.stringify({ index, threadId, body: req.url === '/big' ? 'x'.repeat(4 * 1024 * 1024) : '' }));
});
parentPort!.on('message', (m: ToWorker) => {
  if (m.type === 'connection') {
    const socket = adoptConnection(m, parentPort!);
    if (socket) server.emit('connection', socket);
  } else if (m.type === 'metrics') {
    parentPort!.postMessage({ type: 'metrics', id: m.id, metrics: [{ index }] } satisfies FromWorker);
  } else if (m.type === 'stop') {
    if (holdStop) return;
    server.closeAllConnections();
    process.exit(0);
  }
});
if (!holdReady) {
  parentPort!.postMessage({ type: 'ready' } satisfies FromWorker);
} else {
  // Released by the test through a channel every thread of the process can open.
  const channel = new BroadcastChannel('threads-fixture-hold');
  channel.onmessage = (event) => {
    if ((event as MessageEvent).data !== 'go') return;
    channel.close();
    parentPort!.postMessage({ type: 'ready' } satisfies FromWorker);
  };
  channel.postMessage('held');
}
