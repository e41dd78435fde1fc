/**
 * A worker thread of `berth serve`: its own app and database connection,
 * serving the connections the main thread deals to it (see threads.ts).
 * Its code loads as soon as it is spawned; its app starts when released.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, startServer } from '../app.js';
import { loadConfig } from '../config/index.js';
import { WriteGate } from '../metadata/index.js';
import { adoptConnection, released, type FromWorker, type ToWorker, type WorkerData } from './threads.js';

const data = workerData as WorkerData & { configPath?: string; port: number; writeGate: SharedArrayBuffer };
const port = parentPort!;
await released(port);
const { config } = await loadConfig(data.configPath);
const log = createLogger(config).child({ worker: data.index });
const server = await startServer(config, log, { role: 'worker', handed: { port: data.port }, writeGate: new WriteGate(data.writeGate, data.index + 1) });

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'connection': {
      const socket = adoptConnection(m, port);
      if (socket) server.accept!(socket);
      return;
    }
    case 'metrics': {
      const answer = async (): Promise<unknown[]> => (server.metrics ? await server.metrics.registry.getMetricsAsJSON() : []);
      answer().then(
        (metrics) => port.postMessage({ type: 'metrics', id: m.id, metrics } satisfies FromWorker),
        () => port.postMessage({ type: 'metrics', id: m.id, metrics: [] } satisfies FromWorker),
      );
      return;
    }
    case 'stop':
      server.close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'error during shutdown');
          process.exit(1);
        },
      );
  }
});
port.postMessage({ type: 'ready' } satisfies FromWorker);
