/**
 * Several `berth serve` processes (replicas) with the same config over one
 * PostgreSQL database and one blob store, behind HAProxy: one registry.
 *
 * The blob store is a parameter (`StorageBlock`: the REGISTRY_STORAGE_*
 * variables every replica gets, and how to tear it down). Today it is the
 * filesystem driver on one shared directory; an object store's block drops
 * in the same way.
 *
 * Which replica served a request is read from that replica's access log,
 * found by the X-Request-Id the test sent (HAProxy passes it through).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnBerth, type BerthProcess } from './berth.js';
import { startHaproxy, type LoadBalancer } from './haproxy.js';
import { freePort } from './tools.js';

export interface StorageBlock {
  /** REGISTRY_STORAGE_* (and anything else the store needs), the same for every replica. */
  env: Record<string, string>;
  /** Removes what the store holds (after the replicas stopped). */
  stop(): Promise<void>;
}

/** The filesystem driver on one directory all replicas share (all on this machine). */
export async function sharedFilesystem(): Promise<StorageBlock> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-replicas-'));
  return {
    env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root },
    stop: () => rm(root, { recursive: true, force: true }),
  };
}

/**
 * The blob store the replica tests run on: the one place to change when
 * another shared store is available (an object store started by the test,
 * its REGISTRY_STORAGE_* block in `env`). Today: the filesystem on one
 * shared directory.
 */
export function replicaStorage(): Promise<StorageBlock> {
  return sharedFilesystem();
}

export interface ReplicaSet {
  /** The load balancer's URL: what clients use. */
  url: string;
  host: string;
  lb: LoadBalancer;
  /** The replicas now (a killed one stays in its slot until restarted). */
  replicas: BerthProcess[];
  /** Every replica's own URL, by slot. */
  urls: string[];
  /**
   * The slot of the replica that served each request id (from the access
   * logs; waits a little for lines still being written).
   */
  servedBy(ids: string[]): Promise<number[]>;
  /** Kills a replica (SIGKILL by default) and waits for it to be gone. */
  kill(slot: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a replica again in its slot, on its port. */
  restart(slot: number): Promise<BerthProcess>;
  /** Everything a slot's replicas printed (every incarnation). */
  output(slot: number): string;
  stop(): Promise<void>;
}

export interface ReplicaOptions {
  count: number;
  databaseUrl: string;
  storage: StorageBlock;
  /** More REGISTRY_* for every replica. */
  env?: Record<string, string>;
  /** Serving threads per replica (default 1: the replicas are the unit here, and the machine is shared). */
  workers?: number;
}

export async function startReplicas(opts: ReplicaOptions): Promise<ReplicaSet> {
  const env: Record<string, string> = {
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_BERTH_DATABASE_URL: opts.databaseUrl,
    REGISTRY_BERTH_WORKERS: String(opts.workers ?? 1),
    REGISTRY_LOG_LEVEL: 'info',
    ...opts.storage.env,
    ...opts.env,
  };
  const ports: number[] = [];
  const replicas: BerthProcess[] = [];
  const earlier: string[][] = [];
  try {
    // One after the other: the first one migrates the database.
    for (let i = 0; i < opts.count; i++) {
      const port = await freePort();
      ports.push(port);
      replicas.push(await spawnBerth(port, env));
      earlier.push([]);
      // With several threads, connections are dealt to all of them only once every worker is up.
      if ((opts.workers ?? 1) > 1) await threadsUp(replicas[i]!, opts.workers!);
    }
  } catch (err) {
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    throw err;
  }
  let lb: LoadBalancer;
  try {
    lb = await startHaproxy(ports.map((p, i) => ({ name: `replica${i}`, addr: `127.0.0.1:${p}` })));
  } catch (err) {
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    throw err;
  }
  const output = (slot: number) => [...earlier[slot]!, replicas[slot]!.output()].join('\n');
  const servedIn = (slot: number, ids: Set<string>): Map<string, number> => {
    const found = new Map<string, number>();
    for (const line of output(slot).split('\n')) {
      if (!line.startsWith('{') || !line.includes('"msg":"request"')) continue;
      const id = (JSON.parse(line) as { reqId?: string }).reqId;
      if (id !== undefined && ids.has(id)) found.set(id, slot);
    }
    return found;
  };
  return {
    url: lb.url,
    host: lb.host,
    lb,
    replicas,
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    async servedBy(ids) {
      const wanted = new Set(ids);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const all = new Map<string, number>();
        for (let slot = 0; slot < replicas.length; slot++) for (const [id, s] of servedIn(slot, wanted)) all.set(id, s);
        const missing = ids.filter((id) => !all.has(id));
        if (missing.length === 0) return ids.map((id) => all.get(id)!);
        if (Date.now() > deadline) throw new Error(`no access log line for ${missing.join(', ')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async kill(slot, signal = 'SIGKILL') {
      await replicas[slot]!.stop(signal);
    },
    async restart(slot) {
      earlier[slot]!.push(replicas[slot]!.output());
      replicas[slot] = await spawnBerth(ports[slot]!, env);
      if ((opts.workers ?? 1) > 1) await threadsUp(replicas[slot]!, opts.workers!);
      return replicas[slot]!;
    },
    output,
    async stop() {
      await lb.stop();
      await Promise.all(replicas.map((r) => r.stop()));
    },
  };
}

async function threadsUp(replica: BerthProcess, workers: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!replica.output().includes(`with ${workers} threads`)) {
    if (Date.now() > deadline) throw new Error(`the worker threads never joined:\n${replica.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
