/**
 * Serving threads: the main thread accepts every connection and deals them
 * round-robin between itself and worker threads, all in this one process.
 *
 * Each thread runs its own copy of the app (its own V8 heap and database
 * connection); every shared state lives in the database. Threads rather than
 * processes because each process maps its own ~45 MiB of the node binary.
 * The kernel does not balance one listening socket shared by several threads
 * (one thread takes most of a burst of connections), so the main thread
 * deals them itself: it duplicates the accepted socket's descriptor, closes
 * its own handle, and posts the copy to the worker, which adopts it.
 *
 * Workers are started before the main thread loads its own app, so each
 * loads its code alongside (most of a start's time); a worker starts its
 * app only when released, once the main thread has prepared what every
 * thread shares (the database's schema).
 *
 * Held, the ready workers take no connections until `join`: `berth serve`
 * lets the main thread warm up alone (berth.warmup). Every isolate compiles
 * its own copy of the hot path, and two cold threads on two cores share
 * one core's worth of compiling between them; one thread serves faster
 * meanwhile, with the compiler on the other core.
 */
import { closeSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { native } from '../native/index.js';

/** Main thread → worker. `id` numbers the connections dealt to one worker. */
export type ToWorker = { type: 'start' } | { type: 'connection'; fd: number; id: number } | { type: 'metrics'; id: number } | { type: 'stop' };
/** Worker → main thread. */
export type FromWorker = { type: 'ready' } | { type: 'adopted'; id: number } | { type: 'metrics'; id: number; metrics: unknown[] };

/** What every worker thread is started with. */
export interface WorkerData {
  index: number;
  [key: string]: unknown;
}

export interface ServingThreadsOptions {
  /** Worker threads besides the main thread. */
  count: number;
  /** The module each worker runs. */
  entry: URL;
  data: Record<string, unknown>;
  /** The main thread's own share of the connections. */
  serveHere(socket: net.Socket): void;
  /** Ready workers take no connections until `join` (the main thread warms up alone). */
  held?: boolean;
  log: Logger;
  /** Workers keep dying (more than 5 per worker in a minute). */
  onCrashLoop(): void;
  /** Worker `index` has ended, however it ended. */
  onExit?(index: number): void;
}

const METRICS_TIMEOUT_MS = 2000;

/** A running worker, and the descriptors posted to it that it has not adopted yet (connection id → fd). */
interface Slot {
  worker: Worker;
  unadopted: Map<number, number>;
}

export class ServingThreads {
  private readonly workers = new Map<number, Slot>();
  private readonly ready = new Set<number>();
  /** Until a worker of the slot has been ready once: what `start` waits for. */
  private readonly firstReady = new Map<number, () => void>();
  private connections = 0;
  private readonly pendingMetrics = new Map<number, (metrics: unknown[]) => void>();
  private readonly recentCrashes: number[] = [];
  private metricsRequest = 0;
  private turn = 0;
  private stopping = false;
  private released = false;
  private joined: boolean;

  constructor(private readonly opts: ServingThreadsOptions) {
    this.joined = !opts.held;
  }

  /**
   * Starts every worker; resolves when each has been ready once (which is
   * after `release`). A worker that exits before it is ready is replaced as
   * one that dies later is, and its replacement's ready counts; one that
   * cannot stay up ends the server through `onCrashLoop`.
   */
  async start(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.opts.count }, (_, i) => {
        const ready = new Promise<void>((resolve) => this.firstReady.set(i + 1, resolve));
        this.spawn(i + 1).catch(() => {}); // an early exit: replaced (replace)
        return ready;
      }),
    );
  }

  /** Lets the workers start their apps: now, and at once for any worker started later (a replacement). */
  release(): void {
    this.released = true;
    for (const { worker } of this.workers.values()) worker.postMessage({ type: 'start' } satisfies ToWorker);
  }

  /** Ready workers take their share of the connections from now on (held: until now, none). */
  join(): void {
    this.joined = true;
  }

  /** Worker indexes (1…count) that are up and taking connections. */
  readyWorkers(): number[] {
    return [...this.ready];
  }

  /** Hands one accepted (paused, unread) connection to the next thread in turn. */
  deal(socket: net.Socket): void {
    const slots = this.joined ? [0, ...this.ready] : [0];
    const slot = slots[this.turn++ % slots.length]!;
    const worker = slot === 0 ? undefined : this.workers.get(slot);
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (!worker || typeof fd !== 'number' || fd < 0) return this.opts.serveHere(socket);
    let copy: number;
    try {
      copy = native().dupSocket(fd);
    } catch (err) {
      // Out of descriptors, say: serve it here rather than drop it.
      this.opts.log.warn({ err }, 'could not hand a connection to a worker thread');
      return this.opts.serveHere(socket);
    }
    // Closing this thread's descriptor leaves the connection open: the copy holds it.
    socket.destroy();
    const id = ++this.connections;
    worker.unadopted.set(id, copy);
    worker.worker.postMessage({ type: 'connection', fd: copy, id } satisfies ToWorker);
  }

  /** Every ready worker's metrics (an empty list for one that does not answer in time). */
  metrics(): Promise<unknown[][]> {
    return Promise.all(
      [...this.ready].map(
        (index) =>
          new Promise<unknown[]>((resolve) => {
            const id = ++this.metricsRequest;
            const timer = setTimeout(() => {
              this.pendingMetrics.delete(id);
              resolve([]);
            }, METRICS_TIMEOUT_MS);
            this.pendingMetrics.set(id, (m) => {
              clearTimeout(timer);
              this.pendingMetrics.delete(id);
              resolve(m);
            });
            this.workers.get(index)?.worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
          }),
      ),
    );
  }

  /**
   * Asks every worker to drain and stop; resolves when all have exited. A
   * worker still running `limitMs` later (its drain hung) is ended there.
   */
  async stop(limitMs = Infinity): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers.values()].map(
      ({ worker }) =>
        new Promise<void>((resolve) => {
          const limit = Number.isFinite(limitMs) ? setTimeout(() => void worker.terminate(), limitMs) : undefined;
          worker.once('exit', () => {
            clearTimeout(limit);
            resolve();
          });
        }),
    );
    for (const { worker } of this.workers.values()) worker.postMessage({ type: 'stop' } satisfies ToWorker);
    await Promise.all(exits);
  }

  /** Ends every worker at once (start-up failed). */
  async terminate(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.workers.values()].map(({ worker }) => worker.terminate()));
  }

  private spawn(index: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let worker: Worker;
      try {
        worker = new Worker(this.opts.entry, { workerData: { ...this.opts.data, index } satisfies WorkerData });
      } catch (err) {
        this.opts.log.error({ err, worker: index }, 'could not start a worker thread');
        reject(err as Error);
        if (!this.stopping) this.replace(index, -1);
        return;
      }
      const unadopted = new Map<number, number>();
      this.workers.set(index, { worker, unadopted });
      if (this.released) worker.postMessage({ type: 'start' } satisfies ToWorker);
      worker.on('message', (m: FromWorker) => {
        if (m?.type === 'adopted') {
          unadopted.delete(m.id);
        } else if (m?.type === 'ready') {
          this.ready.add(index);
          resolve();
          this.firstReady.get(index)?.();
          this.firstReady.delete(index);
        } else if (m?.type === 'metrics') {
          this.pendingMetrics.get(m.id)?.(m.metrics ?? []);
        }
      });
      // An uncaught exception ends the worker: 'error', then 'exit'. No more connections go to it.
      worker.on('error', (err) => {
        this.ready.delete(index);
        this.opts.log.error({ err, worker: index }, 'worker thread failed');
      });
      worker.once('exit', (code) => {
        this.workers.delete(index);
        this.ready.delete(index);
        // A worker's messages all arrive before its 'exit': a connection it never
        // acknowledged never reached it, and its descriptor is still open here.
        for (const fd of unadopted.values()) closeQuietly(fd);
        this.opts.onExit?.(index);
        if (this.stopping) return;
        reject(new Error(`worker thread ${index} exited with code ${code} before it was ready`));
        this.replace(index, code);
      });
    });
  }

  private replace(index: number, code: number): void {
    this.opts.log.error({ exitedWorker: index, code }, 'worker thread exited; starting another');
    const now = Date.now();
    this.recentCrashes.push(now);
    while (this.recentCrashes.length && this.recentCrashes[0]! < now - 60_000) this.recentCrashes.shift();
    // A worker that cannot stay up is a configuration or environment problem: stop rather than spin.
    if (this.recentCrashes.length > this.opts.count * 5) {
      this.opts.onCrashLoop();
      return;
    }
    setTimeout(() => {
      if (!this.stopping) this.spawn(index).catch(() => {});
    }, 200);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * Resolves once this thread's event loop has been busy for `ms` in all
 * since the call (idle time does not count), checked every 50 ms.
 */
export function afterBusy(ms: number): Promise<void> {
  const since = performance.eventLoopUtilization();
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (performance.eventLoopUtilization(since).active < ms) return;
      clearInterval(check);
      resolve();
    }, 50);
  });
}

/**
 * In a worker: resolves when the main thread releases it to start its app.
 * Asked to stop before that (the process is shutting down while starting),
 * the worker ends.
 */
export function released(port: MessagePort): Promise<void> {
  return new Promise((resolve) => {
    const wait = (m: ToWorker) => {
      if (m?.type === 'stop') process.exit(0);
      if (m?.type !== 'start') return;
      port.off('message', wait);
      resolve();
    };
    port.on('message', wait);
  });
}

/**
 * In a worker: takes over a connection the main thread dealt, and tells it
 * so. Undefined when the descriptor is unusable (it is then closed).
 */
export function adoptConnection(message: { fd: number; id: number }, port: { postMessage(m: FromWorker): void }): net.Socket | undefined {
  let socket: net.Socket | undefined;
  try {
    socket = new net.Socket({ fd: message.fd, readable: true, writable: true });
  } catch {
    closeQuietly(message.fd);
  }
  port.postMessage({ type: 'adopted', id: message.id });
  return socket;
}

/**
 * Keep-alive connections that a thread took alone while the workers were
 * starting (the first request on them came then) are answered once more
 * after that with `Connection: close`, so their clients reconnect and the
 * new connections are dealt: a connection stays on the thread it lands on.
 */
export function retireEarlyConnections(server: http.Server, starting: () => boolean): void {
  const early = new WeakSet<object>();
  // First among the request listeners: the handler may send its headers before returning.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (starting()) early.add(req.socket);
    else if (early.has(req.socket)) res.shouldKeepAlive = false;
  });
}
