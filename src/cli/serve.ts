/**
 * `berth serve`: one thread, or several in one process.
 *
 * With berth.workers > 1 (by default one per core) the main thread listens,
 * deals the connections it accepts between itself and workers-1 worker
 * threads (threads.ts; it serves them all alone while the workers start and
 * until it has warmed up, berth.warmup), and runs the debug server and the
 * scheduled jobs.
 * This module loads only what listening and starting the workers need; the
 * app is loaded after, so the workers load theirs at the same time.
 * Every shared state lives in the database, so any thread can serve any
 * request.
 */
import { availableParallelism } from 'node:os';
import net from 'node:net';
import type { Logger } from 'pino';
import type { Server } from '../app.js';
import { loadConfig, parseAddr, type Config } from '../config/index.js';
import { bindAddress } from '../http/bind.js';
import type { aggregateMetrics } from '../http/metrics.js';
import { createLogger } from '../logging.js';
import { MAX_OWNERS, WriteGate } from '../metadata/gate.js';
import { afterBusy, retireEarlyConnections, ServingThreads } from './threads.js';

export function workerCount(config: Config): number {
  // In-memory storage lives in one process's heap: it cannot be shared.
  if (config.storage.driver === 'inmemory') return 1;
  // One per core, as many as the write gate tells apart (berth.workers allows no more).
  return config.berth.workers > 0 ? config.berth.workers : Math.min(availableParallelism(), MAX_OWNERS);
}

let stopping = false;

/** Past the drain, what a worker thread gets to close the rest before it is ended. */
const STOP_GRACE_MS = 5000;

function shutdown(log: Logger, signal: string, close: () => Promise<void>, exitCode = 0): void {
  if (stopping) {
    // A second signal: whoever sent it will not wait for the drain.
    if (signal === 'SIGTERM' || signal === 'SIGINT') {
      log.warn({ signal }, 'second signal: exiting without waiting for the drain');
      process.exit(1);
    }
    return;
  }
  stopping = true;
  log.info({ signal }, 'shutting down: draining in-flight requests');
  close().then(
    () => process.exit(exitCode),
    (err: unknown) => {
      log.error({ err }, 'error during shutdown');
      process.exit(1);
    },
  );
}

function onSignals(stop: (signal: string) => void): void {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export async function serve(args: string[]): Promise<void> {
  const { config, warnings, notices, source, applied } = await loadConfig(args[0]);
  const workers = workerCount(config);
  const log = workers > 1 ? createLogger(config).child({ worker: 0 }) : createLogger(config);
  for (const w of warnings) log.warn(w);
  for (const n of notices) log.info(n);
  const summary = { addr: config.http.addr, storage: config.storage.driver, root: config.storage.filesystem.rootdirectory, config: source ?? 'defaults', env: applied, workers };
  if (workers <= 1) {
    const { startServer } = await import('../app.js');
    const server = await startServer(config, log);
    log.info({ ...summary, port: server.http.port, database: server.app.meta.dialect }, `berth listening on ${config.http.addr}`);
    onSignals((signal) => shutdown(log, signal, () => server.close()));
    return;
  }
  await servePrimary(config, log, args, workers, summary);
}

async function servePrimary(config: Config, log: Logger, args: string[], workers: number, summary: Record<string, unknown>): Promise<void> {
  // Listen first (the port may be :0), then start this thread's own share
  // unlistening. Connections that arrive meanwhile wait, paused, in `early`,
  // until this thread can serve them (the workers start their apps after that).
  const { host, port } = parseAddr(config.http.addr);
  const balancer = net.createServer({ pauseOnConnect: true });
  const early: net.Socket[] = [];
  let deal: (socket: net.Socket) => void = (socket) => early.push(socket);
  balancer.on('connection', (socket) => deal(socket));
  await new Promise<void>((resolve, reject) => {
    balancer.once('error', reject);
    void bindAddress(host).then((bind) => balancer.listen(port, bind, () => resolve()), reject);
  });
  const boundPort = (balancer.address() as net.AddressInfo).port;
  // Thread i is the gate's owner i + 1; the main thread is thread 0.
  const writeGate = WriteGate.shared();
  // Set once this thread's app is up; the workers start (and may fail) before that.
  let server: Server | undefined;
  const threads = new ServingThreads({
    count: workers - 1,
    entry: new URL('./serve-worker.js', import.meta.url),
    data: { configPath: args[0], port: boundPort, writeGate },
    serveHere: (socket) => server!.accept!(socket), // dealing begins after the app is up
    held: config.berth.warmup > 0,
    log,
    onExit: (index) => WriteGate.releaseIfHeldBy(writeGate, index + 1),
    onCrashLoop: () => {
      log.fatal('worker threads keep crashing; giving up');
      // A failure: a supervisor (systemd's Restart=on-failure, say) starts it again.
      shutdown(log, 'crash-loop', closeAll, 1);
    },
  });
  // Every thread stops accepting and drains its own in-flight requests (http.draintimeout).
  const closeAll = async () => {
    balancer.close();
    await Promise.all([server?.close(), threads.stop(config.http.draintimeout + STOP_GRACE_MS)]);
  };
  const peerMetrics = async () => (await threads.metrics()) as Parameters<typeof aggregateMetrics>[1];
  // The workers load their code while this thread loads and starts its app;
  // they start theirs when released, after this thread's start has migrated the database.
  // Resolves once every worker has been ready: one that fails to start is
  // replaced, and one that cannot stay up ends the server (onCrashLoop).
  const started = threads.start();
  const startHere = async () => (await import('../app.js')).startServer(config, log, { role: 'single', peerMetrics, handed: { port: boundPort }, writeGate: new WriteGate(writeGate, 1) });
  server = await startHere().catch(async (err: unknown) => {
    balancer.close();
    await threads.terminate();
    throw err;
  });
  threads.release();

  // Signals are handled from now on, even while workers are still starting.
  onSignals((signal) => shutdown(log, signal, closeAll));

  // This thread serves every connection until the workers are up (each
  // starts its own app once released, and may still be loading) and, with
  // berth.warmup, until it has been busy that long: V8 compiles its hot path
  // meanwhile on the other core, where two cold threads would each compile
  // their own copy. Dealing goes to ready threads only, so it needs no
  // switch; the keep-alive connections this thread took alone are closed
  // after their next response once the workers join, so their clients
  // reconnect and are dealt.
  let alone = true;
  retireEarlyConnections(server.http.server, () => alone);
  deal = (socket) => threads.deal(socket);
  const warm = config.berth.warmup > 0 ? afterBusy(config.berth.warmup) : Promise.resolve();
  for (const socket of early.splice(0)) deal(socket);
  log.info({ port: server.http.port }, `serving on ${config.http.addr} while ${workers - 1} more threads start`);

  await started;
  log.info({ ...summary, port: server.http.port, database: server.app.meta.dialect, warmup: config.berth.warmup }, `berth listening on ${config.http.addr} with ${workers} threads`);
  await warm;
  threads.join();
  alone = false;
  log.info({ workers }, `all ${workers} threads serving`);
}
