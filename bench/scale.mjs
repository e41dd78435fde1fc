#!/usr/bin/env node
// Scale-out: Berth on S3 (OpenStack Swift's s3api, a real engine on this
// machine) against the reference registry on the same Swift, and two Berth
// replicas behind HAProxy over PostgreSQL and Swift.
// `npm run bench -- --only scale` or `node bench/scale.mjs [--quick]`, after
// `npx tsc -p tsconfig.json` (it uses the compiled test helpers that start
// Swift, PostgreSQL, the replicas and HAProxy). See docs/performance.md,
// "Object store and replicas".
//
// Topologies, measured in turn in every round (A, B, C, … A, B, C…), each on
// a bucket of its own:
//   berth             one Berth over PostgreSQL and S3, blob GETs streamed by Berth
//   berth-redirect    the same with storage.redirect on: blob GETs answer 307 to
//                     a presigned URL of Swift, which the client follows
//   reference         Debian's docker-registry (distribution 2.8.2) with its s3
//                     driver and the same keys, redirect off
//   reference-redirect  the same with redirect on
//   berth-lb2         two Berth replicas behind HAProxy over PostgreSQL and S3, redirect off
//
// The machine is small and shared: trust the ratios within one run, not the
// absolute rates. Swift itself (Python, one node, one replica, on the same
// two cores) bounds every byte figure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry, MiB, agent, bigBlob, pool, pushSmallImage, request, smallImage } from './lib/client.mjs';
import { runNodeLoad } from './lib/load.mjs';
import { median } from './lib/report.mjs';
import { ensureDebianTool, freePort } from './lib/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../dist/test/support');

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    images: { type: 'string' },
    seconds: { type: 'string' },
    'blob-mib': { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: false,
});
if (opt.help) {
  console.log(`usage: node bench/scale.mjs [--quick] [--rounds N] [--images N] [--seconds S] [--blob-mib N] [--connections N]
  --rounds N       rounds of every measurement on every topology (default 2, 1 with --quick)
  --images N       small images pushed per measurement, 16 at a time (default 30, 10 with --quick)
  --seconds S      seconds of manifest GETs per measurement (default 3, 1 with --quick)
  --blob-mib N     the blob pushed (chunked, 16 MiB PATCHes) and pulled 4 at a time (default 64, 16 with --quick)
  --connections N  connections of the manifest GET load (default 32)`);
  process.exit(0);
}
const cfg = {
  // Small: a one-node Swift on two shared cores takes about a second per small image.
  rounds: Number(opt.rounds ?? (opt.quick ? 1 : 2)),
  images: Number(opt.images ?? (opt.quick ? 10 : 30)),
  seconds: Number(opt.seconds ?? (opt.quick ? 1 : 3)),
  blobMiB: Number(opt['blob-mib'] ?? (opt.quick ? 16 : 64)),
  connections: Number(opt.connections ?? 32),
};

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const { startSwift } = await import(path.join(dist, 'swift.js'));
const { startPostgres, createDatabase } = await import(path.join(dist, 'postgres.js'));
const { startReplicas, s3Storage } = await import(path.join(dist, 'replicas.js'));
const { createS3Client } = await import(path.resolve(here, '../dist/src/storage/s3.js'));
const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
const referenceBin = ensureDebianTool('docker-registry', 'docker-registry', { required: true });

const stops = [];
let stopping;
const stopAll = () => (stopping ??= (async () => {
  for (const s of stops.reverse()) await s().catch((err) => log(`cleanup: ${err.message}`));
})());
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void stopAll().then(() => process.exit(130)));

const loadBefore = os.loadavg()[0];
log('starting Swift (s3api) and PostgreSQL');
const swift = await startSwift();
stops.push(() => swift.stop());
const pg = await startPostgres();
stops.push(() => pg.stop());

/** The reference registry on a bucket of its own, distribution's s3 keys as Berth reads them. */
async function startReferenceS3(name, redirect) {
  const bucket = `bench-${name}-${Date.now().toString(36)}`;
  const client = createS3Client({ bucket, region: swift.region, endpoint: swift.endpoint, accessKey: swift.accessKey, secretKey: swift.secretKey });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-ref-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  // JSON is YAML. The blob-descriptor cache on, as in Debian's and registry:2's shipped configs.
  writeFileSync(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: 'error', accesslog: { disabled: true } },
      storage: {
        s3: { region: swift.region, regionendpoint: swift.endpoint, bucket, accesskey: swift.accessKey, secretkey: swift.secretKey, secure: false, v4auth: true, chunksize: 5 * MiB, rootdirectory: '/reference' },
        delete: { enabled: true },
        cache: { blobdescriptor: 'inmemory' },
        redirect: { disable: !redirect },
      },
      http: { addr: `127.0.0.1:${port}` },
    }),
  );
  // Not REGISTRY_* meant for anything else; nor AWS_CA_BUNDLE, which distribution 2.8's s3 driver
  // cannot take (the SDK panics with LoadCustomCABundleError: distribution/distribution#3841, fixed in 3.0).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE'));
  const child = spawn(referenceBin, ['serve', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
  stops.push(async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${err}`);
    const ok = await fetch(`${base}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer within 30 s: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name, base, redirect };
}

async function startBerthS3(name, count, redirect) {
  const storage = await s3Storage(swift, { redirect });
  const set = await startReplicas({
    count,
    databaseUrl: await createDatabase(pg, `bench_${name.replace(/\W/g, '_')}`),
    storage,
    env: { REGISTRY_LOG_ACCESSLOG_DISABLED: 'true', REGISTRY_LOG_LEVEL: 'warn' },
  });
  stops.push(async () => {
    await set.stop();
    await storage.stop();
  });
  return { name, base: count === 1 ? set.urls[0] : set.url, redirect };
}

/** GET a blob, following one redirect (to the engine) as clients do; returns the bytes received. */
async function pullBlob(base, ag, engineAgent, repo, digest) {
  const res = await request(ag, 'GET', new URL(`/v2/${repo}/blobs/${digest}`, base), { sink: 'discard' });
  if (res.status === 200) return res.bytes;
  if (res.status !== 307 && res.status !== 302) throw new Error(`GET blob ${repo}: ${res.status}`);
  const to = await request(engineAgent, 'GET', new URL(res.headers.location), { sink: 'discard' });
  if (to.status !== 200) throw new Error(`GET ${res.headers.location}: ${to.status}`);
  return to.bytes;
}

const results = new Map();
const record = (topo, metric, value) => {
  const key = `${metric}\u0000${topo}`;
  if (!results.has(key)) results.set(key, []);
  results.get(key).push(value);
};

try {
  log('starting the topologies (3 Berth processes, 2 reference registries, 1 HAProxy)');
  const topologies = [
    await startBerthS3('berth', 1, false),
    await startBerthS3('berth-redirect', 1, true),
    await startReferenceS3('reference', false),
    await startReferenceS3('reference-redirect', true),
    await startBerthS3('berth-lb2', 2, false),
  ];
  const img = smallImage('scale-bench');
  const blob = bigBlob(cfg.blobMiB * MiB);
  for (const t of topologies) {
    const reg = new Registry(t.base, 16);
    await pushSmallImage(reg, 'bench/app', img, 'v1');
    // Warm-up: the upload and GET paths compiled (Berth), connections to Swift open (both).
    await pool(40, 16, (i) => pushSmallImage(reg, `warm/r${i % 10}`, smallImage(`warm-${t.name}-${i}`), `t${i}`));
    await runNodeLoad({ url: `${t.base}/v2/bench/app/manifests/v1`, method: 'GET', headers: { Accept: img.mediaType }, connections: cfg.connections, seconds: 1 });
    reg.close();
  }
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const t of topologies) {
      log(`round ${round}: ${t.name}`);
      const reg = new Registry(t.base, 16);
      // A fresh repository and blob per round (the block differs), so nothing is already there.
      const big = bigBlob(cfg.blobMiB * MiB);
      let started = process.hrtime.bigint();
      await reg.pushChunked(`big/r${round}`, big, 16 * MiB);
      record(t.name, `blob push MiB/s (${cfg.blobMiB} MiB, 16 MiB PATCHes)`, cfg.blobMiB / (Number(process.hrtime.bigint() - started) / 1e9));
      started = process.hrtime.bigint();
      const ag = agent(4);
      const engineAgent = agent(4);
      await pool(4, 4, () => pullBlob(t.base, ag, engineAgent, `big/r${round}`, big.digest));
      record(t.name, `blob GET MiB/s (${cfg.blobMiB} MiB, 4 at a time)`, (4 * cfg.blobMiB) / (Number(process.hrtime.bigint() - started) / 1e9));
      ag.destroy();
      engineAgent.destroy();
      started = process.hrtime.bigint();
      await pool(cfg.images, 16, (i) => pushSmallImage(reg, `push/r${i % 20}`, smallImage(`${t.name}-${round}-${i}`), `t${i}`));
      record(t.name, 'small image pushes/s (config, layer, manifest; 16 at a time)', cfg.images / (Number(process.hrtime.bigint() - started) / 1e9));
      const load = await runNodeLoad({ url: `${t.base}/v2/bench/app/manifests/v1`, method: 'GET', headers: { Accept: img.mediaType }, connections: cfg.connections, seconds: cfg.seconds });
      if (load.errors) throw new Error(`${t.name}: ${load.errors} errors in the manifest GET load`);
      record(t.name, `manifest GET by tag, req/s (${cfg.connections} connections)`, load.rps);
      reg.close();
    }
  }
  const metrics = [...new Set([...results.keys()].map((k) => k.split('\u0000')[0]))];
  const cell = (m, name) => median(results.get(`${m}\u0000${name}`));
  const rows = metrics.map((m) => [
    m,
    ...topologies.map((t) => cell(m, t.name).toFixed(0)),
    `${(cell(m, 'berth') / cell(m, 'reference')).toFixed(2)}×`,
    `${(cell(m, 'berth-redirect') / cell(m, 'reference-redirect')).toFixed(2)}×`,
    `${(cell(m, 'berth-lb2') / cell(m, 'berth')).toFixed(2)}×`,
  ]);
  const all = [['', ...topologies.map((t) => t.name), 'berth/ref', 'redirect berth/ref', 'lb2/berth'], ...rows];
  const widths = all[0].map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  console.log(`Scale-out on OpenStack Swift (s3api) (${cfg.rounds} round(s), medians; ${os.cpus().length} CPUs, load ${loadBefore.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end)`);
  for (const r of all) console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
} finally {
  await stopAll();
}
