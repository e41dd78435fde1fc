/**
 * `berth serve`: one process, or a cluster. With berth.workers > 1 (by
 * default one per core) the primary runs migrations, the debug server and
 * the scheduled jobs, and forks workers that share the API port; every
 * shared state lives in the database, so any worker can serve any request.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { createLogger, startServer, startSupervisor } from '../app.js';
import { loadConfig, type Config } from '../config/index.js';

export function workerCount(config: Config): number {
  // In-memory storage lives in one process's heap: it cannot be shared.
  if (config.storage.driver === 'inmemory') return 1;
  return config.berth.workers > 0 ? config.berth.workers : availableParallelism();
}

function onSignals(stop: (signal: string) => void): void {
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export async function serve(args: string[]): Promise<void> {
  const { config, warnings, source } = await loadConfig(args[0]);
  const log = createLogger(config);
  if (cluster.isWorker) return serveWorker(config, log);
  for (const w of warnings) log.warn(w);
  const workers = workerCount(config);
  const summary = { addr: config.http.addr, storage: config.storage.driver, root: config.storage.filesystem.rootdirectory, config: source, workers };
  if (workers <= 1) {
    const server = await startServer(config, log);
    log.info({ ...summary, port: server.http.port, database: server.app.meta.dialect }, `berth listening on ${config.http.addr}`);
    onSignals((signal) => shutdown(log, signal, () => server.close()));
    return;
  }
  await servePrimary(config, log, workers, summary);
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

async function serveWorker(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, log.child({ worker: cluster.worker?.id }), 'worker');
  onSignals((signal) => shutdown(log, signal, () => server.close()));
}

async function servePrimary(config: Config, log: Logger, workers: number, summary: Record<string, unknown>): Promise<void> {
  // The supervisor opens the database first, so migrations run once, before any worker.
  const supervisor = await startSupervisor(config, log);
  const live = new Set<Worker>();
  const recentCrashes: number[] = [];

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = cluster.fork();
      live.add(worker);
      worker.once('listening', () => resolve());
      worker.once('exit', (code, signal) => {
        live.delete(worker);
        if (stopping) return;
        reject(new Error(`worker exited with ${signal ?? code} before listening`));
        log.error({ worker: worker.id, code, signal }, 'worker exited; starting another');
        const now = Date.now();
        recentCrashes.push(now);
        while (recentCrashes.length && recentCrashes[0]! < now - 60_000) recentCrashes.shift();
        // A worker that cannot stay up is a configuration or environment problem: stop rather than spin.
        if (recentCrashes.length > workers * 5) {
          log.fatal('workers keep crashing; giving up');
          shutdown(log, 'crash-loop', () => supervisor.close());
          return;
        }
        setTimeout(() => fork().catch(() => {}), 200);
      });
    });

  try {
    await Promise.all(Array.from({ length: workers }, () => fork()));
  } catch (err) {
    for (const w of live) w.process.kill('SIGKILL');
    throw err;
  }
  log.info(summary, `berth listening on ${config.http.addr} with ${workers} workers`);

  onSignals((signal) =>
    shutdown(log, signal, async () => {
      // Workers drain their own in-flight requests (http.draintimeout), then exit.
      const exits = [...live].map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))));
      for (const w of live) w.process.kill('SIGTERM');
      await Promise.all(exits);
      await supervisor.close();
    }),
  );
}
