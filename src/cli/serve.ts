/**
 * `berth serve`: one process, or several.
 *
 * With berth.workers > 1 (by default one per core) this process listens,
 * deals the connections it accepts round-robin between itself and
 * workers-1 child processes (passing each socket, unread, over IPC), and
 * runs the debug server and the scheduled jobs. Every shared state lives in
 * the database, so any process can serve any request. Node's cluster module
 * would add a primary that cannot serve (one more process's memory for no
 * throughput); a shared listening socket lets the kernel pile connections
 * onto one process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import net from 'node:net';
import type { Logger } from 'pino';
import { createLogger, startServer, type Server } from '../app.js';
import { loadConfig, parseAddr, type Config } from '../config/index.js';
import type { aggregateMetrics } from '../http/metrics.js';

/**
 * V8 flags every Berth process runs with (bin/berth passes them to the
 * first): a small young generation keeps resident memory near the live data
 * of a process that allocates many short-lived objects per request
 * (measured: about 30 MiB less per process at the same request rate).
 */
export const NODE_FLAGS = ['--max-semi-space-size=2'];
const WORKER_ENV = 'BERTH_WORKER';

type Message = { type: 'ready' } | { type: 'connection' } | { type: 'metrics'; id: number; metrics?: unknown[] };

export function workerCount(config: Config): number {
  // In-memory storage lives in one process's heap: it cannot be shared.
  if (config.storage.driver === 'inmemory') return 1;
  return config.berth.workers > 0 ? config.berth.workers : availableParallelism();
}

let stopping = false;

function shutdown(log: Logger, signal: string, close: () => Promise<void>): void {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: draining in-flight requests');
  close().then(
    () => process.exit(0),
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
  const { config, warnings, source } = await loadConfig(args[0]);
  const worker = process.env[WORKER_ENV];
  if (worker !== undefined && process.send) return serveWorker(config, createLogger(config).child({ worker: Number(worker) }));

  const workers = workerCount(config);
  const log = workers > 1 ? createLogger(config).child({ worker: 0 }) : createLogger(config);
  for (const w of warnings) log.warn(w);
  const summary = { addr: config.http.addr, storage: config.storage.driver, root: config.storage.filesystem.rootdirectory, config: source, workers };
  if (workers <= 1) {
    const server = await startServer(config, log);
    log.info({ ...summary, port: server.http.port, database: server.app.meta.dialect }, `berth listening on ${config.http.addr}`);
    onSignals((signal) => shutdown(log, signal, () => server.close()));
    return;
  }
  await servePrimary(config, log, args, workers, summary);
}

/** A worker: serves the connections the primary hands over, answers metrics requests. */
async function serveWorker(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, log, { role: 'worker', handed: { port: parseAddr(config.http.addr).port } });
  process.on('message', (m: Message, socket: unknown) => {
    if (m?.type === 'connection' && socket) server.accept!(socket as net.Socket);
    if (m?.type !== 'metrics') return;
    const reply = async () => ({ type: 'metrics', id: m.id, metrics: server.metrics ? await server.metrics.registry.getMetricsAsJSON() : [] });
    reply().then((r) => process.send?.(r), () => process.send?.({ type: 'metrics', id: m.id, metrics: [] }));
  });
  process.send?.({ type: 'ready' } satisfies Message);
  onSignals((signal) => shutdown(log, signal, () => server.close()));
  // The primary is gone (even by kill -9): no more connections will come; finish what is open.
  process.on('disconnect', () => shutdown(log, 'primary exited', () => server.close(1000)));
}

async function servePrimary(config: Config, log: Logger, args: string[], workers: number, summary: Record<string, unknown>): Promise<void> {
  const children = new Map<number, ChildProcess>();
  let metricsRequest = 0;
  const pendingMetrics = new Map<number, (metrics: unknown[]) => void>();

  const peerMetrics = async () => {
    const answers = [...children.values()].map(
      (child) =>
        new Promise<unknown[]>((resolve) => {
          const id = ++metricsRequest;
          const timer = setTimeout(() => {
            pendingMetrics.delete(id);
            resolve([]);
          }, 2000);
          pendingMetrics.set(id, (m) => {
            clearTimeout(timer);
            resolve(m);
          });
          child.send({ type: 'metrics', id } satisfies Message);
        }),
    );
    return (await Promise.all(answers)) as Parameters<typeof aggregateMetrics>[1];
  };

  // Listen first (the port may be :0), then start this process's own share
  // unlistening. Connections that arrive meanwhile wait, paused, in `early`.
  const { host, port } = parseAddr(config.http.addr);
  const balancer = net.createServer({ pauseOnConnect: true });
  const early: net.Socket[] = [];
  let deal: (socket: net.Socket) => void = (socket) => early.push(socket);
  balancer.on('connection', (socket) => deal(socket));
  await new Promise<void>((resolve, reject) => {
    balancer.once('error', reject);
    balancer.listen(port, host, () => resolve());
  });
  const boundPort = (balancer.address() as net.AddressInfo).port;
  const server: Server = await startServer(config, log, { role: 'single', peerMetrics, handed: { port: boundPort } });
  const ready = new Set<number>();
  let turn = 0;
  const dealRoundRobin = (socket: net.Socket) => {
    // Round-robin over this process (slot 0) and every ready worker.
    const slots = [0, ...ready];
    const slot = slots[turn++ % slots.length]!;
    const child = slot === 0 ? undefined : children.get(slot);
    if (!child) return server.accept!(socket);
    child.send({ type: 'connection' } satisfies Message, socket, { keepOpen: false }, (err) => {
      // The worker went away between choosing and sending: serve it here instead.
      if (err && !socket.destroyed) server.accept!(socket);
    });
  };
  const recentCrashes: number[] = [];

  const spawnWorker = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = fork(process.argv[1]!, ['serve', ...args], {
        execArgv: [...process.execArgv.filter((a) => !NODE_FLAGS.some((f) => a.startsWith(f.split('=')[0]!))), ...NODE_FLAGS],
        env: { ...process.env, [WORKER_ENV]: String(index) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.set(index, child);
      child.on('message', (m: Message) => {
        if (m?.type === 'ready') {
          ready.add(index);
          resolve();
        }
        if (m?.type === 'metrics') pendingMetrics.get(m.id)?.(m.metrics ?? []);
      });
      child.once('exit', (code, signal) => {
        children.delete(index);
        ready.delete(index);
        if (stopping) return;
        reject(new Error(`worker ${index} exited with ${signal ?? code} before it was ready`));
        log.error({ exitedWorker: index, code, signal }, 'worker exited; starting another');
        const now = Date.now();
        recentCrashes.push(now);
        while (recentCrashes.length && recentCrashes[0]! < now - 60_000) recentCrashes.shift();
        // A worker that cannot stay up is a configuration or environment problem: stop rather than spin.
        if (recentCrashes.length > workers * 5) {
          log.fatal('workers keep crashing; giving up');
          shutdown(log, 'crash-loop', () => server.close());
          return;
        }
        setTimeout(() => spawnWorker(index).catch(() => {}), 200);
      });
    });

  // Signals are handled from now on, even while workers are still starting.
  onSignals((signal) =>
    shutdown(log, signal, async () => {
      // Every process stops accepting and drains its own in-flight requests (http.draintimeout).
      const exits = [...children.values()].map((c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()))));
      balancer.close();
      for (const c of children.values()) c.kill('SIGTERM');
      await Promise.all([server.close(), ...exits]);
    }),
  );

  try {
    await Promise.all(Array.from({ length: workers - 1 }, (_, i) => spawnWorker(i + 1)));
  } catch (err) {
    if (stopping) return;
    for (const c of children.values()) c.kill('SIGKILL');
    throw err;
  }
  // Connections are dealt only once every worker is up: a keep-alive
  // connection stays where it first lands, so dealing them all to this
  // process while the workers start would leave the workers idle.
  deal = dealRoundRobin;
  for (const socket of early.splice(0)) deal(socket);
  log.info({ ...summary, port: server.http.port, database: server.app.meta.dialect }, `berth listening on ${config.http.addr} with ${workers} processes`);

}
