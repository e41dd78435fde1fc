/**
 * The registry-race load: concurrent pushers of images that share layers
 * (with cross-repository mounts and image indexes), deleters by tag and by
 * digest, and optionally garbage collections triggered back to back, all
 * against one or several Berth endpoints sharing the same storage. Then a
 * full check: every tagged manifest, its index children and their blobs are
 * fetchable and intact, and no acknowledged push was lost.
 *
 * The load never throws on a server error: it counts every 5xx (with the
 * request that drew it) so a test can assert there were none and show them.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from './berth.js';
import { startPostgres } from './postgres.js';
import { freePort } from './tools.js';

export interface RaceOptions {
  /** Berth endpoints (http://host:port); requests are spread over all of them. */
  urls: string[];
  /** How long the pushers, deleters and collectors run (ms). */
  durationMs: number;
  repositories?: number;
  pushers?: number;
  deleters?: number;
  sharedLayers?: number;
  /** Trigger collections back to back while the load runs (the server's configured grace applies). */
  collect?: boolean;
}

export interface RaceReport {
  requests: number;
  /** Every 5xx answered, as `METHOD path → status body`. */
  serverErrors: string[];
  /** Answers no client of the spec should get (an unexpected 4xx), as above. */
  unexpected: string[];
  /**
   * Pushes given up after 50 attempts, each refused because a collection at a grace of 0 s removed
   * a blob between its upload and the manifest: a liveness limit of that setting, not a loss.
   */
  starved: string[];
  pushes: number;
  indexes: number;
  /** Manifest PUTs refused with MANIFEST_BLOB_UNKNOWN (a collection took a blob between upload and manifest) and pushed again. */
  retriedPushes: number;
  mounts: number;
  uploads: number;
  deletes: number;
  /** Deletes by digest refused because the manifest is a child of a live index (409 DENIED). */
  deletesRefused: number;
  collections: number;
  blobsCollected: number;
  /** Tagged manifests checked at the end, and those found incomplete (with why). */
  checked: number;
  incomplete: string[];
  /** Acknowledged pushes, not deleted since, that are gone or point elsewhere. */
  lost: string[];
}

const MT = {
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
};
const ACCEPT = `${MT.manifest}, ${MT.index}`;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

export async function runRaceLoad(opts: RaceOptions): Promise<RaceReport> {
  const repos = Array.from({ length: opts.repositories ?? 16 }, (_, i) => `race/r${String(i).padStart(2, '0')}`);
  const shared = Array.from({ length: opts.sharedLayers ?? 12 }, () => randomBytes(4096 + Math.floor(Math.random() * 8192)));
  const report: RaceReport = {
    requests: 0,
    serverErrors: [],
    unexpected: [],
    starved: [],
    pushes: 0,
    indexes: 0,
    retriedPushes: 0,
    mounts: 0,
    uploads: 0,
    deletes: 0,
    deletesRefused: 0,
    collections: 0,
    blobsCollected: 0,
    checked: 0,
    incomplete: [],
    lost: [],
  };
  /** repo:tag → digest of every acknowledged tagged push. */
  const acked = new Map<string, string>();
  const deletedTags = new Set<string>();
  const deletedDigests = new Set<string>();
  let rr = 0;

  async function call(method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Response> {
    const base = opts.urls[rr++ % opts.urls.length]!;
    report.requests++;
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, { method, body: init.body, headers: init.headers, signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      // A reset or timed-out connection is as bad as a 5xx for the client.
      report.serverErrors.push(`${method} ${path} → ${(err as Error).message}`);
      throw new LoadAborted();
    }
    if (res.status >= 500) {
      report.serverErrors.push(`${method} ${path} → ${res.status} ${(await res.text()).slice(0, 300)}`);
      throw new LoadAborted();
    }
    return res;
  }

  function unexpected(method: string, path: string, res: Response, body: string): never {
    report.unexpected.push(`${method} ${path} → ${res.status} ${body.slice(0, 300)}`);
    throw new LoadAborted();
  }

  async function ensureBlob(repo: string, data: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    const desc = { mediaType, digest, size: data.byteLength };
    const head = await call('HEAD', `/v2/${repo}/blobs/${digest}`);
    if (head.status === 200) return desc;
    if (head.status !== 404) unexpected('HEAD', `/v2/${repo}/blobs/${digest}`, head, '');
    // Every other attempt without `from`: the automatic mount looks in every repository.
    const from = (report.mounts + report.uploads) % 2 === 0 ? `&from=${pick(repos.filter((r) => r !== repo))}` : '';
    const path = `/v2/${repo}/blobs/uploads/?mount=${digest}${from}`;
    const mount = await call('POST', path);
    if (mount.status === 201) {
      report.mounts++;
      return desc;
    }
    if (mount.status !== 202) unexpected('POST', path, mount, await mount.text());
    const location = new URL(mount.headers.get('location')!, 'http://x');
    location.searchParams.set('digest', digest);
    const putPath = `${location.pathname}${location.search}`;
    const put = await call('PUT', putPath, { body: data, headers: { 'Content-Type': 'application/octet-stream' } });
    if (put.status !== 201) unexpected('PUT', putPath, put, await put.text());
    report.uploads++;
    return desc;
  }

  /** PUTs a manifest; false when a referenced blob or child vanished (the caller pushes again). */
  async function putManifest(repo: string, reference: string, mediaType: string, body: string): Promise<boolean> {
    const path = `/v2/${repo}/manifests/${reference}`;
    const res = await call('PUT', path, { body, headers: { 'Content-Type': mediaType } });
    if (res.status === 201) return true;
    const text = await res.text();
    if (res.status === 400 && text.includes('MANIFEST_BLOB_UNKNOWN')) return false;
    unexpected('PUT', path, res, text);
  }

  async function image(repo: string): Promise<{ desc: Descriptor; body: string }> {
    const layers = [];
    for (const layer of [pick(shared), pick(shared), randomBytes(1024)]) layers.push(await ensureBlob(repo, layer, MT.layer));
    const config = await ensureBlob(repo, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') })), MT.config);
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MT.manifest, config, layers });
    return { desc: { mediaType: MT.manifest, digest: sha256(Buffer.from(body)), size: Buffer.byteLength(body) }, body };
  }

  async function push(repo: string, tag: string): Promise<void> {
    const asIndex = Math.random() < 0.25;
    for (let attempt = 0; attempt < 50; attempt++) {
      if (attempt > 0) report.retriedPushes++;
      let body: string;
      let mediaType: string;
      if (asIndex) {
        const children: Descriptor[] = [];
        let complete = true;
        for (const arch of ['amd64', 'arm64']) {
          const child = await image(repo);
          if (!(await putManifest(repo, child.desc.digest, MT.manifest, child.body))) {
            complete = false;
            break;
          }
          children.push({ ...child.desc, platform: { os: 'linux', architecture: arch } } as Descriptor);
        }
        if (!complete) continue;
        mediaType = MT.index;
        body = JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: children });
      } else {
        const one = await image(repo);
        mediaType = MT.manifest;
        body = one.body;
      }
      if (await putManifest(repo, tag, mediaType, body)) {
        acked.set(`${repo}:${tag}`, sha256(Buffer.from(body)));
        report.pushes++;
        if (asIndex) report.indexes++;
        return;
      }
    }
    report.starved.push(`${repo}:${tag}`);
  }

  async function deleteOne(): Promise<void> {
    const repo = pick(repos);
    const list = await call('GET', `/v2/${repo}/tags/list?n=1000`);
    if (list.status === 404) return void (await list.text());
    const tags = ((await list.json()) as { tags?: string[] | null }).tags ?? [];
    if (!tags.length) return;
    const tag = pick(tags);
    if (Math.random() < 0.5) {
      const r = await call('DELETE', `/v2/${repo}/manifests/${tag}`);
      if (r.status === 202) deletedTags.add(`${repo}:${tag}`);
      else if (r.status !== 404) unexpected('DELETE', `/v2/${repo}/manifests/${tag}`, r, await r.text());
    } else {
      const head = await call('HEAD', `/v2/${repo}/manifests/${tag}`, { headers: { Accept: ACCEPT } });
      if (head.status !== 200) return;
      const digest = head.headers.get('docker-content-digest')!;
      // Recorded before the answer: a delete the server applied but whose answer was lost still deleted it.
      deletedDigests.add(`${repo}@${digest}`);
      const r = await call('DELETE', `/v2/${repo}/manifests/${digest}`);
      if (r.status === 409) {
        // A child of a live index in the repository: refused (DENIED), and still there. (It stays in
        // deletedDigests: another deleter may have recorded it too and succeed once the index is gone.)
        const body = await r.text();
        if (!body.includes('"DENIED"')) unexpected('DELETE', `/v2/${repo}/manifests/${digest}`, r, body);
        report.deletesRefused++;
        return;
      }
      if (r.status !== 202 && r.status !== 404) unexpected('DELETE', `/v2/${repo}/manifests/${digest}`, r, await r.text());
    }
    report.deletes++;
  }

  async function collectOnce(deleteUntagged: boolean): Promise<void> {
    // The collection runs outside the request; wait=true holds the answer until it has finished (200, with the summary).
    const path = `/berth/v1/gc?wait=true${deleteUntagged ? '&deleteuntagged=true' : ''}`;
    const r = await call('POST', path);
    if (r.status !== 200) return unexpected('POST', path, r, await r.text());
    report.collections++;
    report.blobsCollected += ((await r.json()) as { summary: { blobsDeleted: number } }).summary.blobsDeleted;
  }

  const deadline = Date.now() + opts.durationMs;
  const loop = async (step: (n: number) => Promise<void>) => {
    for (let n = 0; Date.now() < deadline; n++) {
      try {
        await step(n);
      } catch (err) {
        if (!(err instanceof LoadAborted)) throw err;
        // Counted already; a real client would go on with its next request.
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let p = 0; p < (opts.pushers ?? 6); p++) workers.push(loop((n) => push(pick(repos), `p${p}-${n}`)));
  // Deleters pace themselves (as people and retention jobs do), so images accumulate to be checked.
  for (let d = 0; d < (opts.deleters ?? 2); d++) workers.push(loop(async () => {
    await deleteOne();
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
  }));
  if (opts.collect) workers.push(loop((n) => collectOnce(n % 2 === 1)));
  await Promise.all(workers);

  // The check: everything still tagged is whole, and nothing acknowledged is gone.
  const seen = new Map<string, string>();
  for (const repo of repos) {
    const list = await call('GET', `/v2/${repo}/tags/list?n=100000`).catch(() => null);
    if (!list || list.status === 404) continue;
    const tags = ((await list.json()) as { tags?: string[] | null }).tags ?? [];
    for (const tag of tags) {
      report.checked++;
      const problem = await checkImage(repo, tag, (digest) => seen.set(`${repo}:${tag}`, digest)).catch((err: Error) => `${err.message}`);
      if (problem) report.incomplete.push(`${repo}:${tag} ${problem}`);
    }
  }
  for (const [key, digest] of acked) {
    const repo = key.slice(0, key.indexOf(':'));
    if (deletedTags.has(key) || deletedDigests.has(`${repo}@${digest}`)) continue;
    const now = seen.get(key);
    if (now !== digest) report.lost.push(`${key} (${digest}) is ${now ? `now ${now}` : 'gone'}`);
  }
  return report;

  /** Null when the tagged manifest, its children and all their blobs are fetchable and intact. */
  async function checkImage(repo: string, reference: string, found?: (digest: string) => void): Promise<string | null> {
    const m = await call('GET', `/v2/${repo}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
    if (m.status !== 200) return `manifest ${reference}: ${m.status} ${(await m.text()).slice(0, 200)}`;
    const bytes = Buffer.from(await m.arrayBuffer());
    found?.(sha256(bytes));
    const doc = JSON.parse(bytes.toString()) as { mediaType: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    if (doc.manifests) {
      for (const child of doc.manifests) {
        const problem = await checkImage(repo, child.digest);
        if (problem) return `child ${problem}`;
      }
      return null;
    }
    for (const d of [doc.config!, ...doc.layers!]) {
      const b = await call('GET', `/v2/${repo}/blobs/${d.digest}`);
      if (b.status !== 200) return `blob ${d.digest}: ${b.status} ${(await b.text()).slice(0, 200)}`;
      if (sha256(Buffer.from(await b.arrayBuffer())) !== d.digest) return `blob ${d.digest}: content differs`;
    }
    return null;
  }
}

/** A request already counted as a failure; the worker goes on with its next one. */
class LoadAborted extends Error {}

/** One line for a test's output. */
export function summarize(r: RaceReport): string {
  return (
    `${r.requests} requests: ${r.pushes} pushes acknowledged (${r.indexes} indexes, ${r.retriedPushes} pushed again after MANIFEST_BLOB_UNKNOWN, ${r.starved.length} given up), ` +
    `${r.uploads} uploads, ${r.mounts} mounts, ${r.deletes} deletes, ${r.collections} collections removing ${r.blobsCollected} blobs; ` +
    `${r.checked} tagged manifests checked: ${r.serverErrors.length} 5xx, ${r.unexpected.length} unexpected answers, ${r.incomplete.length} incomplete, ${r.lost.length} lost`
  );
}

export interface RaceServers {
  urls: string[];
  /** Everything the processes printed (their JSON logs). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `processes` real `berth serve` processes (each with its default
 * threads, one per core) on one data directory and, with `databaseUrl`, one
 * PostgreSQL database; without it, the SQLite file beside the blobs.
 */
export async function startRaceServers(opts: { processes: number; databaseUrl?: string; env?: Record<string, string> }): Promise<RaceServers> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-race-'));
  const env: Record<string, string> = {
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
    REGISTRY_BERTH_GC_INTERVAL: '1h',
    // The threads race each other from the first request, not after the main thread's warm-up.
    REGISTRY_BERTH_WARMUP: '0',
    ...(opts.databaseUrl ? { REGISTRY_BERTH_DATABASE_URL: opts.databaseUrl } : {}),
    ...opts.env,
  };
  const started: BerthProcess[] = [];
  try {
    // One after the other: the first one migrates the database.
    for (let i = 0; i < opts.processes; i++) started.push(await spawnBerth(await freePort(), env));
  } catch (err) {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    urls: started.map((p) => p.url),
    output: () => started.map((p) => p.output()).join('\n'),
    async stop() {
      await Promise.all(started.map((p) => p.stop()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * The race load against each engine and topology: SQLite behind one
 * `berth serve`, PostgreSQL behind one, and PostgreSQL behind two processes
 * sharing the database and the data directory. One fresh PostgreSQL
 * database per case (on the run's shared cluster, see support/postgres.ts). Each case asserts 0 5xx, 0
 * unexpected answers, 0 incomplete images and 0 lost acknowledged pushes.
 */
export function raceCases(title: string, opts: { collect: boolean; durationMs: number; env?: Record<string, string> }): void {
  describe(title, () => {
    const cases = [
      { name: 'SQLite, one berth serve with its default threads', processes: 1, postgres: false },
      { name: 'PostgreSQL, one berth serve with its default threads', processes: 1, postgres: true },
      { name: 'PostgreSQL, two berth serve processes on one database and one data directory', processes: 2, postgres: true },
    ];
    for (const c of cases) {
      it(c.name, { timeout: opts.durationMs + 180_000 }, async (t) => {
        const pg = c.postgres ? await startPostgres() : undefined;
        const servers = await startRaceServers({ processes: c.processes, databaseUrl: pg?.url, env: opts.env });
        let report: RaceReport;
        try {
          report = await runRaceLoad({ urls: servers.urls, durationMs: opts.durationMs, collect: opts.collect });
        } finally {
          await servers.stop();
          await pg?.stop();
        }
        const line = summarize(report);
        t.diagnostic(line);
        console.log(`${c.name}: ${line}`);
        const deadlocks = (servers.output().match(/deadlock detected/g) ?? []).length;
        if (deadlocks) t.diagnostic(`${deadlocks} deadlocks detected by PostgreSQL (in the server output: requests that failed on one)`);
        const sample = (xs: string[]) => xs.slice(0, 10).join('\n');
        assert.deepEqual(report.serverErrors.length, 0, `5xx answers:\n${sample(report.serverErrors)}\n--- server output ---\n${servers.output().slice(-4000)}`);
        assert.equal(report.unexpected.length, 0, `unexpected answers:\n${sample(report.unexpected)}`);
        assert.ok(report.starved.length <= Math.max(2, report.pushes / 10), `most pushes get through: ${line}`);
        assert.equal(report.incomplete.length, 0, `incomplete images:\n${sample(report.incomplete)}`);
        assert.equal(report.lost.length, 0, `lost pushes:\n${sample(report.lost)}`);
        // A sanity floor, not a rate: with collections back to back at a grace of 0 s on a loaded
        // machine most pushes are refused once (MANIFEST_BLOB_UNKNOWN) and pushed again.
        assert.ok(report.pushes >= 10 && report.indexes > 0 && report.deletes > 0 && report.mounts > 0, `the load pushed, mounted and deleted: ${line}`);
        assert.ok(report.checked > 0, 'some tagged images were left to check');
        if (opts.collect) assert.ok(report.collections > 5 && report.blobsCollected > 0, 'collections ran and removed blobs while pushes went on');
      });
    }
  });
}
