#!/usr/bin/env node
// Replicas: push and pull through HAProxy in front of two Berth replicas,
// against one replica alone, all over one PostgreSQL (a fresh database each)
// and the filesystem driver: `node bench/replicas.mjs [--quick]` after
// `npx tsc -p tsconfig.json` (it uses the compiled test helpers that start
// PostgreSQL, the replicas and HAProxy). See docs/performance.md, "Replicas".
//
// Three topologies, measured in turn in every round (A, B, C, A, B, C…):
//   direct   one replica, the client straight to it
//   lb-1     one replica behind HAProxy (the balancer's own cost)
//   lb-2     two replicas behind HAProxy, round robin per request
// Each replica runs one serving thread (berth.workers: 1), so two replicas
// are two threads, as one replica with two threads would be.
//
// The machine is shared and small: trust the ratios between topologies in
// one run, not the absolute rates.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry, MiB, bigBlob, pool, pushSmallImage, smallImage } from './lib/client.mjs';
import { runNodeLoad } from './lib/load.mjs';
import { median } from './lib/report.mjs';

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
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  console.log(`usage: node bench/replicas.mjs [--quick] [--rounds N] [--images N] [--seconds S] [--blob-mib N] [--connections N]
  --rounds N       rounds of every measurement on every topology (default 3, 1 with --quick)
  --images N       small images pushed per measurement, 16 at a time (default 300, 60 with --quick)
  --seconds S      seconds of manifest GETs per measurement (default 5, 2 with --quick)
  --blob-mib N     the blob pulled, 4 at a time (default 256, 32 with --quick)
  --connections N  connections of the manifest GET load (default 32)`);
  process.exit(0);
}
const cfg = {
  rounds: Number(opt.rounds ?? (opt.quick ? 1 : 3)),
  images: Number(opt.images ?? (opt.quick ? 60 : 300)),
  seconds: Number(opt.seconds ?? (opt.quick ? 2 : 5)),
  blobMiB: Number(opt['blob-mib'] ?? (opt.quick ? 32 : 256)),
  connections: Number(opt.connections ?? 32),
};

const { startPostgres, createDatabase } = await import(path.join(dist, 'postgres.js'));
const { startReplicas, replicaStorage } = await import(path.join(dist, 'replicas.js'));

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const pg = await startPostgres();
const stops = [async () => pg.stop()];
process.on('SIGINT', async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  process.exit(130);
});

async function topology(name, count, direct) {
  const storage = await replicaStorage();
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
  return { name, base: direct ? set.urls[0] : set.url };
}

const results = new Map();
const record = (topo, metric, value) => {
  const key = `${metric}\u0000${topo}`;
  if (!results.has(key)) results.set(key, []);
  results.get(key).push(value);
};

try {
  log('starting PostgreSQL, 4 replicas and 2 HAProxies');
  const topologies = [await topology('direct', 1, true), await topology('lb-1', 1, false), await topology('lb-2', 2, false)];
  const img = smallImage('replicas-bench');
  const blob = bigBlob(cfg.blobMiB * MiB);
  for (const t of topologies) {
    const reg = new Registry(t.base, 16);
    await pushSmallImage(reg, 'bench/app', img, 'v1');
    await reg.pushChunked('bench/big', blob, 16 * MiB);
    // Warm-up: the upload path and the GET path compiled on every replica.
    await pool(100, 16, (i) => pushSmallImage(reg, `warm/r${i % 10}`, smallImage(`warm-${t.name}-${i}`), `t${i}`));
    await runNodeLoad({ url: `${t.base}/v2/bench/app/manifests/v1`, method: 'GET', headers: { Accept: img.mediaType }, connections: cfg.connections, seconds: 1 });
    reg.close();
  }
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const t of topologies) {
      log(`round ${round}: ${t.name}`);
      const reg = new Registry(t.base, 16);
      let started = process.hrtime.bigint();
      await pool(cfg.images, 16, (i) => pushSmallImage(reg, `push/r${i % 20}`, smallImage(`${t.name}-${round}-${i}`), `t${i}`));
      record(t.name, 'small image pushes/s (config, layer, manifest; 16 at a time)', cfg.images / (Number(process.hrtime.bigint() - started) / 1e9));
      const load = await runNodeLoad({ url: `${t.base}/v2/bench/app/manifests/v1`, method: 'GET', headers: { Accept: img.mediaType }, connections: cfg.connections, seconds: cfg.seconds });
      if (load.errors) throw new Error(`${t.name}: ${load.errors} errors in the manifest GET load`);
      record(t.name, `manifest GET by tag, req/s (${cfg.connections} connections)`, load.rps);
      record(t.name, 'manifest GET p99 (ms)', load.p99);
      started = process.hrtime.bigint();
      const ag = new Registry(t.base, 4);
      await pool(4, 4, () => ag.pullBlob('bench/big', blob.digest));
      record(t.name, `blob GET MiB/s (${cfg.blobMiB} MiB, 4 at a time)`, (4 * cfg.blobMiB) / (Number(process.hrtime.bigint() - started) / 1e9));
      ag.close();
      reg.close();
    }
  }
  const metrics = [...new Set([...results.keys()].map((k) => k.split('\u0000')[0]))];
  const rows = metrics.map((m) => [m, ...topologies.map((t) => median(results.get(`${m}\u0000${t.name}`)).toFixed(m.includes('p99') ? 1 : 0))]);
  const all = [['', ...topologies.map((t) => t.name)], ...rows];
  const widths = all[0].map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  console.log(`Replicas over PostgreSQL (${cfg.rounds} rounds, medians; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)})`);
  for (const r of all) console.log(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
} finally {
  for (const s of stops.reverse()) await s().catch((err) => log(`cleanup: ${err.message}`));
}
