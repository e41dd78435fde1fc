/**
 * Several `berth serve` processes (replicas) with the same config over one
 * PostgreSQL database and one blob store, behind HAProxy: one registry.
 *
 * The blob store is a parameter (`StorageBlock`: the REGISTRY_STORAGE_*
 * variables every replica gets, and how to tear it down): the filesystem
 * driver on one shared directory, S3 on OpenStack Swift (a fresh bucket per
 * call) or Azure Blob on Azurite (a fresh container per call).
 *
 * Which replica served a request is read from that replica's access log,
 * found by the X-Request-Id the test sent (HAProxy passes it through).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnBerth, type BerthProcess } from './berth.js';
import { startHaproxy, type LoadBalancer } from './haproxy.js';
import { freePort } from './tools.js';
import type { S3Engine } from './swift.js';
import type { AzureEngine } from './azurite.js';

export interface StorageBlock {
  /** Which driver the replicas run on. */
  kind: 'filesystem' | 's3' | 'azure';
  /** REGISTRY_STORAGE_* (and anything else the store needs), the same for every replica. */
  env: Record<string, string>;
  /** Removes what the store holds (after the replicas stopped). */
  stop(): Promise<void>;
}

/** The filesystem driver on one directory all replicas share (all on this machine). */
export async function sharedFilesystem(): Promise<StorageBlock> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-replicas-'));
  return {
    kind: 'filesystem',
    env: { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root },
    stop: () => rm(root, { recursive: true, force: true }),
  };
}

export interface ObjectStoreOptions {
  /** Blob GETs answer 307 to a presigned URL of the engine (distribution's default for these drivers). */
  redirect: boolean;
}

/**
 * S3 on the engine given (OpenStack Swift's s3api in the tests): a bucket of
 * its own, created here, and distribution's keys as REGISTRY_STORAGE_S3_*
 * variables, as a deployment passes them to every replica.
 */
export async function s3Storage(engine: S3Engine, opts: ObjectStoreOptions): Promise<StorageBlock> {
  const bucket = `berth-replicas-${randomBytes(5).toString('hex')}`;
  // The SDK is loaded only by the tests that use S3 (as the server does).
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const { createS3Client } = await import('../../src/storage/s3.js');
  const client = createS3Client({ bucket, region: engine.region, endpoint: engine.endpoint, accessKey: engine.accessKey, secretKey: engine.secretKey });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    kind: 's3',
    env: {
      REGISTRY_STORAGE_S3_REGION: engine.region,
      REGISTRY_STORAGE_S3_REGIONENDPOINT: engine.endpoint,
      REGISTRY_STORAGE_S3_BUCKET: bucket,
      REGISTRY_STORAGE_S3_ACCESSKEY: engine.accessKey,
      REGISTRY_STORAGE_S3_SECRETKEY: engine.secretKey,
      REGISTRY_STORAGE_S3_FORCEPATHSTYLE: 'true',
      REGISTRY_STORAGE_S3_ROOTDIRECTORY: '/berth',
      // The smallest part S3 allows: more parts per layer, so more of the multipart path is exercised.
      REGISTRY_STORAGE_S3_CHUNKSIZE: String(5 * 1024 * 1024),
      REGISTRY_STORAGE_REDIRECT_DISABLE: String(!opts.redirect),
    },
    // The bucket goes with the engine (a throwaway one per test run).
    stop: async () => {},
  };
}

/** Azure Blob on the engine given (Azurite in the tests): a container of its own, created by the first replica. */
export async function azureStorage(engine: AzureEngine, opts: ObjectStoreOptions): Promise<StorageBlock> {
  return {
    kind: 'azure',
    env: {
      REGISTRY_STORAGE_AZURE_ACCOUNTNAME: engine.accountName,
      REGISTRY_STORAGE_AZURE_ACCOUNTKEY: engine.accountKey,
      REGISTRY_STORAGE_AZURE_CONTAINER: `berth-replicas-${randomBytes(5).toString('hex')}`,
      REGISTRY_STORAGE_AZURE_SERVICEURL: engine.serviceUrl,
      REGISTRY_STORAGE_AZURE_ROOTDIRECTORY: '/berth',
      REGISTRY_STORAGE_REDIRECT_DISABLE: String(!opts.redirect),
    },
    stop: async () => {},
  };
}

/**
 * The blob store the replica tests run on: the filesystem on one shared
 * directory by default, or an object store's block for the engine given
 * (the test file imports support/swift.js or support/azurite.js itself, so
 * scripts/run-tests.mjs starts that engine once for the run).
 */
export function replicaStorage(
  store?: { s3: S3Engine; redirect: boolean } | { azure: AzureEngine; redirect: boolean },
): Promise<StorageBlock> {
  if (!store) return sharedFilesystem();
  if ('s3' in store) return s3Storage(store.s3, { redirect: store.redirect });
  return azureStorage(store.azure, { redirect: store.redirect });
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
    // Every thread takes connections as soon as it is up, not after the main thread's warm-up.
    REGISTRY_BERTH_WARMUP: '0',
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
  while (!replica.output().includes(`all ${workers} threads serving`)) {
    if (Date.now() > deadline) throw new Error(`the worker threads never joined:\n${replica.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
