/** A worker for threads.test.ts: answers with its index; `/crash` ends it with an uncaught exception. */
import http from 'node:http';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { adoptConnection, type FromWorker, type ToWorker, type WorkerData } from './threads.js';

const { index } = workerData as WorkerData;
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
    server.closeAllConnections();
    process.exit(0);
  }
});
parentPort!.postMessage({ type: 'ready' } satisfies FromWorker);
