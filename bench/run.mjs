#!/usr/bin/env node
// Berth against the reference registry (Debian's docker-registry,
// distribution 2.8.x): `npm run bench` (full, 10–20 min) or
// `npm run bench -- --quick` (smoke, under a minute). See bench/README.md.
//
// Both servers start from clean data directories on 127.0.0.1 and are
// measured alternately (Berth, reference, Berth, reference…) for every
// measurement of every round. The machine is shared and noisy: trust the
// ratios and the server CPU per operation, not the absolute times.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry, GiB, MiB, bigBlob, pool, pushSmallImage, rawGet, repeatedBody, sha256, smallImage } from './lib/client.mjs';
import { runFuzz } from './lib/fuzz.mjs';
import { runSoak } from './lib/soak.mjs';
import { runSearchBench, searchReport } from './lib/search.mjs';
import { authReport, runSmallAuth } from './lib/auth.mjs';
import { pushBlobs, runNodeLoad, runWrk } from './lib/load.mjs';
import { MemorySampler, NoiseMeter, machineBefore, treeCpuSeconds } from './lib/proc.mjs';
import { median, summarise, table } from './lib/report.mjs';
import { buildCommit, cleanupSync, ensureBerthBuilt, ensureDebianTool, berthNodeFlags, berthSpawn, referenceSpawn, startBerth, startReference, timeStartup, trackTempDir, waitForFreedInodes } from './lib/servers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'blob-mib': { type: 'string' },
    chunk: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    'small-blobs': { type: 'string' },
    repos: { type: 'string' },
    tags: { type: 'string' },
    page: { type: 'string' },
    only: { type: 'string' },
    startups: { type: 'string' },
    fuzz: { type: 'string' },
    soak: { type: 'string' },
    'fuzz-reference': { type: 'string' },
    'auth-rounds': { type: 'string' },
    'auth-duration': { type: 'string' },
    'search-repos': { type: 'string' },
    'search-runs': { type: 'string' },
    'search-postgres': { type: 'boolean', default: false },
    loadgen: { type: 'string' },
    'pull-client': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    outside: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    commit: { type: 'string' },
    'berth-env': { type: 'string', multiple: true },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (opt.help) {
  console.log(`usage: node bench/run.mjs [--quick] [options]

  --quick             smoke run (1 round, 64 MiB blob, 2 s loads, 500 repos/tags): under a minute
  --outside           as an outside harness measures: no warm-up pass anywhere; the 4 KiB pushes of
                      round 1 are the first requests the fresh servers see (before any seeding)
  --rounds N          rounds (default 3)
  --blob-mib N        size of the big blob in MiB (default 1024)
  --chunk N           PATCH size in MiB for the chunked push (default 16)
  --duration S        seconds of load per small-request measurement (default 10)
  --connections N     connections for the small-request load (default 64)
  --small-blobs N     4 KiB blobs pushed per round at concurrency 16 (default 2000)
  --repos N           repositories seeded for _catalog (default 10000)
  --tags N            tags seeded in one repository (default 10000)
  --page N            page size n for _catalog and tags/list (default 1000)
  --only LIST         phases to run, comma-separated: push,pull,small,small-auth,blobs,list,soak,fuzz,startup,search,scale
                      (small-auth is not in --quick's default list: add it with --only; scale, bench/scale.mjs
                      on OpenStack Swift and two replicas, is in no default list)
  --search-repos N    search: repositories seeded in process (default 100000, 10000 with --quick)
  --search-runs N     search: timed runs per kind of query (default 50, 20 with --quick)
  --search-postgres   search: also on a throwaway PostgreSQL cluster (Debian's postgresql), after SQLite
  --auth-rounds N     small-auth: alternations of auth off / Bearer / Basic / anonymous (default 5, 1 with --quick)
  --auth-duration S   small-auth: seconds of load per measurement (default 5, 1 with --quick)
  --soak S            seconds of the mixed push/pull soak at 64 connections, per server (default 60, 3 with --quick)
  --fuzz N            malformed requests sent to Berth one at a time in the fuzz phase (default 10000, 112 with --quick)
  --fuzz-reference N  the same to the reference (default 56, 0 with --quick: it takes seconds and GiBs on some)
  --startups N        restarts timed per server in the startup phase (default 5, 2 with --quick)
  --loadgen node|wrk  small-request load generator: node:net (default) or wrk for the GETs (installed when missing)
  --pull-client curl|node  what downloads the pulled blob: curl (default, installed when missing) or node:http
  --commit REV        benchmark Berth as committed at REV (built in a temp dir), not the work tree
  --berth-env K=V     extra environment for Berth, e.g. REGISTRY_BERTH_WORKERS=1 (repeatable)
  --no-build          measure dist/ as it is (default: npx tsc first when src/ is newer)
  --cpu-prof          run Berth under node --cpu-prof; profiles land in bench/results/profiles/
  --out FILE          JSON output (default bench/results/latest.json, or latest-quick.json with --quick)`);
  process.exit(0);
}

const int = (v, d) => (v === undefined ? d : Number(v));
const OUT = opt.outside;
const Q = opt.quick;
const cfg = {
  quick: Q,
  rounds: int(opt.rounds, Q ? 1 : 3),
  blobBytes: int(opt['blob-mib'], Q ? 64 : 1024) * MiB,
  chunkBytes: int(opt.chunk, 16) * MiB,
  loadSeconds: Number(opt.duration ?? (Q ? 2 : 10)),
  warmupSeconds: OUT ? 0 : Q ? 0.5 : 1, // untimed, before each load (wrk rounds up to whole seconds)
  connections: int(opt.connections, 64),
  smallBlobs: int(opt['small-blobs'], Q ? 500 : 2000),
  smallBlobConcurrency: 16,
  smallBlobWarmup: OUT ? 0 : Q ? 250 : 2000, // untimed, before each round's blobs
  // Once, before round 1, timed apart (not in a smoke run). --outside: as many as a round pushes, as the fresh servers' first requests.
  smallBlobFirstPass: OUT ? int(opt['small-blobs'], Q ? 500 : 2000) : Q ? 0 : 4000,
  repos: int(opt.repos, Q ? 500 : 10000),
  tags: int(opt.tags, Q ? 500 : 10000),
  // Small enough in --quick that pagination still takes several pages.
  page: int(opt.page, Q ? 100 : 1000),
  seedConcurrency: 16,
  pullStreams: 8,
  // One-stream pulls per round, one after another: a single 1 GiB pull lasts a third of a second, and one unlucky scheduling decides it.
  pullRepeats: 3,
  rangeReps: Q ? 10 : 20,
  listReps: 3,
  startups: int(opt.startups, Q ? 2 : 5),
  fuzz: int(opt.fuzz, Q ? 112 : 10000),
  soakSeconds: Number(opt.soak ?? (Q ? 3 : 60)),
  fuzzReference: int(opt['fuzz-reference'], Q ? 0 : 56),
  searchRepos: int(opt['search-repos'], Q ? 10000 : 100000),
  searchRuns: int(opt['search-runs'], Q ? 20 : 50),
  authRounds: int(opt['auth-rounds'], Q ? 1 : 5),
  authSeconds: Number(opt['auth-duration'] ?? (Q ? 1 : 5)),
  authWarmupSeconds: Q ? 0 : 2, // untimed, once per request and credentials before the first alternation
  tokenSeconds: Q ? 1 : 2,
  tokenConnections: 8,
  outside: OUT,
  phases: new Set((opt.only ?? `push,pull,small,${Q ? '' : 'small-auth,'}blobs,list,soak,fuzz,startup,search`).split(',').map((s) => s.trim())),
};
const outFile = path.resolve(opt.out ?? path.join(here, 'results', Q ? 'latest-quick.json' : 'latest.json'));
if (cfg.blobBytes % Math.min(MiB, cfg.blobBytes) !== 0) throw new Error('--blob-mib must be a whole number of MiB');

const t00 = Date.now();
const log = (m) => process.stderr.write(`bench: [${((Date.now() - t00) / 1000).toFixed(0).padStart(4)} s] ${m}\n`);

// ── cleanup on every way out ───────────────────────────────────────────────
const servers = [];
let cleaning;
async function cleanup() {
  cleaning ??= (async () => {
    await Promise.all(servers.map((s) => s.stop().catch(() => {})));
    cleanupSync();
  })();
  return cleaning;
}
process.on('exit', cleanupSync);
// What the benchmark was doing, for the message when something fails.
let step = 'starting';
function fail(err) {
  process.stderr.write(`\nbench: FAILED during ${step}: ${err?.stack ?? err}\n`);
  for (const s of servers) {
    process.stderr.write(`bench: ${s.name} ${s.status()}; its last output:\n${s.output().slice(-3000) || '(none)'}\n`);
  }
  cleanup().finally(() => process.exit(1));
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping servers and removing temp dirs`);
    cleanup().finally(() => process.exit(130));
  });
}

// ── set-up ─────────────────────────────────────────────────────────────────
const started = new Date();
const before = await machineBefore(2000);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
trackTempDir(tmp);
// Resolved before building, so the label names what was built.
const commitSha = opt.commit ? execFileSync('git', ['rev-parse', '--verify', `${opt.commit}^{commit}`], { cwd: repoRoot, encoding: 'utf8' }).trim() : undefined;
const gitCommit = (() => {
  if (commitSha) return commitSha.slice(0, 7);
  try {
    const c = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: repoRoot, encoding: 'utf8' }).trim() ? '+dirty' : '';
    return c + dirty;
  } catch {
    return 'unknown';
  }
})();
ensureBerthBuilt(repoRoot, { build: !opt['no-build'] && !opt.commit });
await waitForFreedInodes(tmp, log);
// ── search: in process on a fresh SQLite store, before the servers start (so they do not compete) ──
let search;
let searchPostgres;
if (cfg.phases.has('search')) {
  step = 'search';
  log(`search: seeding ${cfg.searchRepos} repositories in process`);
  search = await runSearchBench({ repoRoot, repos: cfg.searchRepos, runs: cfg.searchRuns, log });
  if (opt['search-postgres']) {
    step = 'search (postgres)';
    searchPostgres = await runSearchBench({ repoRoot, repos: cfg.searchRepos, runs: cfg.searchRuns, engine: 'postgres', log });
  }
  if (cfg.phases.size === 1) {
    // Nothing else asked for: no servers to start.
    console.log(`\n${searchReport(search)}`);
    if (searchPostgres) console.log(`\n${searchReport(searchPostgres)}`);
    console.log(`machine: load average ${before.loadavg.join(' ')} before; other processes ${before.otherPct.toFixed(0)}% before`);
    const result = { date: started.toISOString(), seconds: (Date.now() - started.getTime()) / 1000, berth: { commit: gitCommit, node: process.version }, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, before }, config: { ...cfg, phases: [...cfg.phases] }, search, searchPostgres };
    mkdirSync(path.dirname(outFile), { recursive: true });
    writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
    console.log(`\nJSON: ${path.relative(process.cwd(), outFile)}`);
    cleanupSync();
    process.exit(0);
  }
}
// ── scale: object store and replicas (bench/scale.mjs: Swift, PostgreSQL, HAProxy), before the servers start ──
if (cfg.phases.has('scale')) {
  step = 'scale';
  log('scale: bench/scale.mjs (Berth and the reference on Swift, two replicas behind HAProxy)');
  const r = spawnSync(process.execPath, [path.join(here, 'scale.mjs'), ...(Q ? ['--quick'] : []), ...(opt.rounds ? ['--rounds', String(opt.rounds)] : [])], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`bench/scale.mjs exited with ${r.status ?? r.signal}`);
  if (cfg.phases.size === 1) {
    cleanupSync();
    process.exit(0);
  }
}
const mainJs = opt.commit ? buildCommit(repoRoot, commitSha, path.join(tmp, 'build')) : path.join(repoRoot, 'dist/src/cli/main.js');
const referenceBin = ensureDebianTool('docker-registry', 'docker-registry', { required: true });
// The node:net load generator is the default for all four small requests, so
// their rows compare with each other; --loadgen wrk uses wrk (installed when
// missing) for the GETs. wrk cannot do HEAD (it waits for the body that a
// HEAD response's Content-Length announces), so HEADs always use node.
const wrkBin = opt.loadgen === 'wrk' ? ensureDebianTool('wrk', 'wrk', { required: true }) : undefined;
const loadgen = wrkBin ? 'wrk for GET, node:net for HEAD' : 'node:net';
// Pulls are downloaded by curl by default: one node:http client tops out near
// 1 GB/s on this kind of machine, below both servers, so it measured itself.
const curlBin = (opt['pull-client'] ?? 'curl') === 'curl' ? ensureDebianTool('curl', 'curl', { required: true }) : undefined;
const pullClient = curlBin ? 'curl' : 'node:http';

/** Downloads a blob and discards it; resolves to the number of bytes. */
function pullBlob(reg, repo, digest) {
  if (!curlBin) return reg.pullBlob(repo, digest);
  return new Promise((resolve, reject) => {
    execFile(curlBin, ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', reg.url(`/v2/${repo}/blobs/${digest}`).href], (err, stdout) =>
      err ? reject(new Error(`curl GET blob ${repo}: ${err.message}`)) : resolve(Number(stdout)),
    );
  });
}
const wrkThreads = Math.max(1, Math.floor(os.cpus().length / 2));

const profDir = path.join(here, 'results', 'profiles');
if (opt['cpu-prof']) mkdirSync(profDir, { recursive: true });

const berthOpts = {
  // <root>/dist/src/cli/main.js → <root>/bin/berth
  nodeFlags: berthNodeFlags(path.resolve(mainJs, '../../../../bin/berth')),
  extraArgs: opt['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  extraEnv: Object.fromEntries((opt['berth-env'] ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
};
const berthSrv = await startBerth(mainJs, path.join(tmp, 'berth'), berthOpts);
servers.push(berthSrv);
const refSrv = await startReference(referenceBin, path.join(tmp, 'reference'));
servers.push(refSrv);
const referenceVersion = (() => {
  try {
    return execFileSync(referenceBin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();

const targets = {
  berth: { srv: berthSrv, reg: new Registry(berthSrv.base, 64), mem: new MemorySampler(berthSrv.pid) },
  reference: { srv: refSrv, reg: new Registry(refSrv.base, 64), mem: new MemorySampler(refSrv.pid) },
};
const order = ['berth', 'reference'];
const cpu0 = Object.fromEntries(order.map((k) => [k, treeCpuSeconds(targets[k].srv.pid)]));
log(`Berth ${berthSrv.base} (pid ${berthSrv.pid}), reference ${refSrv.base} (pid ${refSrv.pid}), load generator ${loadgen}`);

/** Flushes dirty pages so one server's writes are not written back during the other's measurement. */
function settle() {
  spawnSync('sync');
}

/**
 * How fast the disk takes a durable write in the data directory: `bytes`
 * in 1 MiB writes, then one fdatasync. Context for the push rows (Berth
 * flushes as it writes, so it can beat this single end-of-file flush).
 */
function durableWriteMBps(file, block, bytes) {
  const t0 = process.hrtime.bigint();
  const fd = openSync(file, 'w');
  try {
    for (let at = 0; at < bytes; at += block.byteLength) writeSync(fd, block, 0, block.byteLength, at);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
  return bytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

// peak RSS per phase group, max over measurements
const phasePeak = { berth: {}, reference: {} };

/** Runs fn against one server; returns { seconds, cpu, value } with the server tree's CPU delta. */
async function measure(which, group, fn, label = '') {
  const t = targets[which];
  step = `${which}: ${group}${label ? ` ${label}` : ''}`;
  t.mem.mark();
  const c0 = treeCpuSeconds(t.srv.pid);
  const t0 = process.hrtime.bigint();
  const value = await fn(t.reg, t);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = treeCpuSeconds(t.srv.pid) - c0;
  const peak = t.mem.mark();
  phasePeak[which][group] = Math.max(phasePeak[which][group] ?? 0, peak);
  return { seconds, cpu, value };
}

// ── seeding (once, before the rounds) ──────────────────────────────────────
const smallImg = smallImage('berth-bench-small');
const smallRepo = 'bench/small';
const seedImg = smallImage('berth-bench-seed');
const seedResults = { berth: {}, reference: {} };
const noise = new NoiseMeter();

// --outside: the 4 KiB pushes are the first requests the fresh servers answer (a cold server, no warm-up).
if (OUT && cfg.phases.has('blobs') && cfg.smallBlobFirstPass > 0) await firstPassOfSmallBlobs();

for (const which of order) {
  const t = targets[which];
  await pushSmallImage(t.reg, smallRepo, smallImg, 'latest');
}

if (cfg.phases.has('list')) {
  for (const which of order) {
    log(`seeding ${which}: ${cfg.repos} repositories, ${cfg.tags} tags`);
    const repoName = (i) => `seed/r${String(i).padStart(5, '0')}`;
    const repos = await measure(which, 'seed', async (reg) => {
      step = `${which}: seeding repositories`;
      await pushSmallImage(reg, 'seed/base', seedImg, 'latest');
      await pool(cfg.repos, cfg.seedConcurrency, async (i) => {
        await reg.mount(repoName(i), seedImg.configDigest, 'seed/base');
        await reg.mount(repoName(i), seedImg.layerDigest, 'seed/base');
        await reg.putManifest(repoName(i), 'latest', seedImg.mediaType, seedImg.manifest);
      });
    });
    settle();
    const tags = await measure(which, 'seed', async (reg) => {
      await pushSmallImage(reg, 'seed/tags', seedImg, 'latest');
      await pool(cfg.tags, cfg.seedConcurrency, async (i) => {
        await reg.putManifest('seed/tags', `t${String(i).padStart(5, '0')}`, seedImg.mediaType, seedImg.manifest);
      });
    });
    settle();
    log(`  ${which}: ${cfg.repos} repositories in ${repos.seconds.toFixed(1)} s, ${cfg.tags} tags in ${tags.seconds.toFixed(1)} s`);
    // Added to, not replaced: --outside's first pass of small blobs came before.
    Object.assign(seedResults[which], {
      'seed.repos.perSec': cfg.repos / repos.seconds,
      'seed.repos.cpuMs': (1000 * repos.cpu) / cfg.repos,
      'seed.tags.perSec': cfg.tags / tags.seconds,
      'seed.tags.cpuMs': (1000 * tags.cpu) / cfg.tags,
    });
  }
}

// ── the rounds ─────────────────────────────────────────────────────────────
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const smallOps = [
  { key: 'manifestGetTag', label: 'manifest GET by tag', method: 'GET', path: `/v2/${smallRepo}/manifests/latest`, headers: { Accept: ACCEPT } },
  { key: 'manifestHeadTag', label: 'manifest HEAD by tag', method: 'HEAD', path: `/v2/${smallRepo}/manifests/latest`, headers: { Accept: ACCEPT } },
  { key: 'manifestGetDigest', label: 'manifest GET by digest', method: 'GET', path: `/v2/${smallRepo}/manifests/${smallImg.manifestDigest}`, headers: { Accept: ACCEPT } },
  { key: 'blobHead', label: 'blob HEAD', method: 'HEAD', path: `/v2/${smallRepo}/blobs/${smallImg.layerDigest}`, headers: {} },
];

async function load(base, op, seconds, connections = cfg.connections) {
  const spec = { url: `${base}${op.path}`, method: op.method, headers: op.headers, connections, seconds };
  return wrkBin && op.method !== 'HEAD' ? runWrk(wrkBin, tmp, { ...spec, threads: wrkThreads }) : runNodeLoad(spec);
}

// One untimed pass of the small-request load on each server before round 1:
// JIT, prepared statements and caches warm in every worker, so the first
// measured operation is not charged for start-up work the others skip.
if (cfg.phases.has('small') && !OUT) {
  for (const which of order) {
    for (const op of smallOps) {
      step = `${which}: warm-up ${op.label}`;
      await load(targets[which].srv.base, op, cfg.warmupSeconds * 2);
    }
  }
}

// The same for the 4 KiB pushes, and timed, as a row of its own: a fresh
// Node process runs its first few thousand pushes largely in unoptimized
// code while V8 compiles the upload path on each serving thread, so this
// pass shows a cold server and the rounds a warm one.
/** `count` distinct 4 KiB blobs, and a pusher of a slice of them (16 at a time) into a repository of a server. */
function smallBlobs(count) {
  const blobs = Array.from({ length: count }, () => randomBytes(4096));
  const digests = blobs.map(sha256);
  return (which, repo, from = 0, to = count) =>
    pushBlobs({ base: targets[which].srv.base, repo, blobs: blobs.slice(from, to), digests: digests.slice(from, to), connections: cfg.smallBlobConcurrency });
}

async function firstPassOfSmallBlobs() {
  const push = smallBlobs(cfg.smallBlobFirstPass);
  for (const which of order) {
    const m = await measure(which, 'blobs', () => push(which, 'bench/small-blobs-first'), 'first pass of small blobs');
    seedResults[which]['blobs.firstPass.perSec'] = cfg.smallBlobFirstPass / m.seconds;
    seedResults[which]['blobs.firstPass.cpuMs'] = (1000 * m.cpu) / cfg.smallBlobFirstPass;
    settle();
  }
}
// --outside ran it first thing, on the fresh servers.
if (cfg.phases.has('blobs') && cfg.smallBlobFirstPass > 0 && !OUT) await firstPassOfSmallBlobs();

const rounds = [];
for (let round = 1; round <= cfg.rounds; round++) {
  log(`round ${round}/${cfg.rounds}`);
  const r = { berth: {}, reference: {}, noise: undefined };
  const roundNoise = new NoiseMeter();
  // Berth first in odd rounds, the reference first in even ones: whatever the previous step leaves behind
  // (writeback, the page cache, a scheduler's placement) falls on each in turn.
  const turn = round % 2 === 1 ? order : [...order].reverse();
  const both = async (fn) => {
    for (const which of turn) await fn(which, r[which]);
  };

  if (cfg.phases.has('push') || cfg.phases.has('pull')) {
    const mono = bigBlob(cfg.blobBytes);
    const chunked = bigBlob(cfg.blobBytes);
    const repo = `bench/big-r${round}`;
    const gib = cfg.blobBytes / GiB;
    await both(async (which, out) => {
      const m = await measure(which, 'push', (reg) => reg.pushMonolithic(repo, mono.digest, repeatedBody(mono.block, mono.size)), 'monolithic');
      out['push.mono.mbps'] = cfg.blobBytes / 1e6 / m.seconds;
      out['push.mono.cpuPerGiB'] = m.cpu / gib;
      settle();
    });
    if (cfg.phases.has('push')) {
      r.diskMBps = durableWriteMBps(path.join(tmp, 'disk-probe'), mono.block, cfg.blobBytes);
      // Beside the push rows: the same disk for both, and each push as a share of it.
      for (const which of order) {
        r[which]['disk.mbps'] = r.diskMBps;
        r[which]['push.mono.ofDisk'] = r[which]['push.mono.mbps'] / r.diskMBps;
      }
      settle();
      await both(async (which, out) => {
        const m = await measure(which, 'push', (reg) => reg.pushChunked(repo, chunked, cfg.chunkBytes), 'chunked');
        out['push.chunked.mbps'] = cfg.blobBytes / 1e6 / m.seconds;
        out['push.chunked.cpuPerGiB'] = m.cpu / gib;
        out['push.chunked.ofDisk'] = out['push.chunked.mbps'] / r.diskMBps;
        settle();
      });
    }
    if (cfg.phases.has('pull')) {
      // One stream (pulls in a row) and 8 at once, read by curl (pullBlob), then by a raw node:net client (rawGet) as an outside harness reads them.
      const blobURL = (reg) => reg.url(`/v2/${repo}/blobs/${mono.digest}`);
      const readers = [
        { key: 'pull', label: '', pull: (reg) => pullBlob(reg, repo, mono.digest) },
        { key: 'pull.raw', label: ', raw socket', pull: (reg) => rawGet(blobURL(reg)) },
      ];
      for (const { key, label, pull } of readers) {
        for (const [kind, streams, repeats] of [['single', 1, cfg.pullRepeats], ['parallel', cfg.pullStreams, 1]]) {
          await both(async (which, out) => {
            const m = await measure(which, 'pull', async (reg) => {
              for (let i = 0; i < repeats; i++) {
                const sizes = await Promise.all(Array.from({ length: streams }, () => pull(reg)));
                if (sizes.some((s) => s !== cfg.blobBytes)) throw new Error(`${which}: pulls${label} read ${sizes.join(', ')} bytes, expected ${cfg.blobBytes} each`);
              }
            }, `${kind === 'single' ? 'one stream' : 'parallel streams'}${label}`);
            const pulled = streams * repeats;
            out[`${key}.${kind}.mbps`] = (pulled * cfg.blobBytes) / 1e6 / m.seconds;
            out[`${key}.${kind}.cpuPerGiB`] = m.cpu / (pulled * gib);
          });
        }
      }
      await both(async (which, out) => {
        const start = cfg.blobBytes - MiB;
        const lat = [];
        const m = await measure(which, 'pull', async (reg) => {
          for (let i = 0; i < cfg.rangeReps; i++) {
            const t0 = process.hrtime.bigint();
            const body = await reg.rangeGet(repo, mono.digest, start, cfg.blobBytes - 1);
            lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
            // The blob is one block repeated, so its last MiB is that block.
            if (i === 0 && !body.equals(mono.block.subarray(mono.block.byteLength - MiB))) throw new Error(`${which}: Range body differs`);
          }
        }, 'Range');
        out['pull.range.ms'] = median(lat);
        out['pull.range.cpuMs'] = (1000 * m.cpu) / cfg.rangeReps;
      });
    }
  }

  if (cfg.phases.has('small')) {
    for (const op of smallOps) {
      await both(async (which, out) => {
        const base = targets[which].srv.base;
        step = `${which}: warm-up ${op.label}`;
        if (cfg.warmupSeconds > 0) await load(base, op, cfg.warmupSeconds); // JIT and caches warm, not counted
        const m = await measure(which, 'small', () => load(base, op, cfg.loadSeconds), op.label);
        const w = m.value;
        if (w.errors > 0) log(`${which} ${op.label}: ${w.errors} errors of ${w.requests} requests`);
        out[`small.${op.key}.rps`] = w.rps;
        out[`small.${op.key}.p50`] = w.p50;
        out[`small.${op.key}.p99`] = w.p99;
        out[`small.${op.key}.cpuUs`] = (1e6 * m.cpu) / w.requests;
        out[`small.${op.key}.errors`] = w.errors;
      });
    }
  }

  if (cfg.phases.has('blobs')) {
    const push = smallBlobs(cfg.smallBlobs + cfg.smallBlobWarmup);
    await both(async (which, out) => {
      step = `${which}: warm-up small blobs`;
      if (cfg.smallBlobWarmup > 0) await push(which, `bench/small-blobs-warm-r${round}`, cfg.smallBlobs); // JIT warm, not counted
      const m = await measure(which, 'blobs', () => push(which, `bench/small-blobs-r${round}`, 0, cfg.smallBlobs), 'small blobs');
      out['blobs.perSec'] = cfg.smallBlobs / m.seconds;
      out['blobs.cpuMs'] = (1000 * m.cpu) / cfg.smallBlobs;
      settle();
    });
  }

  if (cfg.phases.has('list')) {
    const listOps = [
      {
        key: 'catalogWalk',
        run: async (reg) => {
          const w = await reg.walk(`/v2/_catalog?n=${cfg.page}`, 'repositories');
          if (w.items < cfg.repos) throw new Error(`_catalog walk found ${w.items} repositories, expected ≥ ${cfg.repos}`);
          return w;
        },
      },
      {
        key: 'catalogFirst',
        reps: 20,
        run: async (reg) => {
          const res = await reg.get(`/v2/_catalog?n=${cfg.page}`);
          if (res.status !== 200) throw new Error(`_catalog: ${res.status}`);
          return { items: JSON.parse(res.body.toString()).repositories.length, pages: 1 };
        },
      },
      {
        key: 'tagsWalk',
        run: async (reg) => {
          const w = await reg.walk(`/v2/seed/tags/tags/list?n=${cfg.page}`, 'tags');
          if (w.items !== cfg.tags + 1) throw new Error(`tags/list walk found ${w.items} tags, expected ${cfg.tags + 1}`);
          return w;
        },
      },
      {
        // distribution 2.8 ignores n on tags/list: this is the same work for both.
        key: 'tagsAll',
        run: async (reg) => {
          const res = await reg.get('/v2/seed/tags/tags/list');
          if (res.status !== 200) throw new Error(`tags/list: ${res.status}`);
          const n = JSON.parse(res.body.toString()).tags.length;
          if (n !== cfg.tags + 1) throw new Error(`tags/list without n returned ${n} tags, expected ${cfg.tags + 1}`);
          return { items: n, pages: 1 };
        },
      },
    ];
    for (const op of listOps) {
      await both(async (which, out) => {
        const times = [];
        let cpu = 0;
        let pages = 0;
        const reps = op.reps ?? cfg.listReps;
        for (let i = 0; i < reps; i++) {
          const m = await measure(which, 'list', op.run, op.key);
          times.push(m.seconds * 1000);
          cpu += m.cpu;
          pages = m.value.pages;
        }
        out[`list.${op.key}.ms`] = median(times);
        out[`list.${op.key}.cpuMs`] = (1000 * cpu) / reps;
        out[`list.${op.key}.pages`] = pages;
      });
    }
  }

  r.noise = roundNoise.read();
  rounds.push(r);
}

// The rows of section 6 cover the rounds only, as they did before the soak and fuzz phases.
const afterRounds = Object.fromEntries(order.map((k) => [k, { hwm: targets[k].mem.peakHwmMiB(), cpu: treeCpuSeconds(targets[k].srv.pid) }]));

// ── small-auth: the small requests with credentials, Berth against Berth ────
// Two more Berths of the same build, fresh: one with auth off, one with
// accounts on (bench/lib/auth.mjs). The main servers idle meanwhile.
let smallAuth;
if (cfg.phases.has('small-auth')) {
  smallAuth = await runSmallAuth({
    mainJs,
    dir: path.join(tmp, 'small-auth'),
    berthOpts,
    servers,
    repo: smallRepo,
    img: smallImg,
    ops: smallOps,
    load,
    cfg,
    log,
    setStep: (s) => (step = s),
  });
}

// ── soak: pushes and pulls of small images at 64 connections, after the rounds ──
const soak = { berth: {}, reference: {} };
if (cfg.phases.has('soak')) {
  for (const which of order) {
    const t = targets[which];
    const m = await measure(which, 'soak', () => runSoak({ base: t.srv.base, connections: cfg.connections, seconds: cfg.soakSeconds }), `${cfg.soakSeconds} s mixed soak`);
    const r = m.value;
    const out = (soak[which] = { 'soak.images.perSec': r.images / r.seconds, 'soak.cpuMs': (1000 * m.cpu) / r.images });
    for (const [op, v] of [['push', r.push], ['pull', r.pull]]) Object.assign(out, { [`soak.${op}.p50`]: v.p50, [`soak.${op}.p99`]: v.p99, [`soak.${op}.max`]: v.max });
    const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
    out['soak.errors'] = errors;
    log(`  ${which}: soak ${r.images} images pushed, ${r.pull.n} pull requests; ${Object.entries(r.kinds).map(([k, v]) => `${k} p50 ${v.p50.toFixed(1)} p99 ${v.p99.toFixed(1)} ms`).join('; ')}${errors ? `; ${errors} errors ${JSON.stringify(r.errors)}` : ''}`);
    settle();
  }
}

// ── fuzz: malformed requests one at a time, after the rounds ────────────────
// Each server's peak resident memory while it answers them (Σ VmHWM of its
// tree, which never falls: the largest the process has been since start),
// and every answer's status: none may be a 5xx.
const fuzz = { berth: {}, reference: {} };
const fuzzDetail = {};
if (cfg.phases.has('fuzz')) {
  // The reference answers a few of these slowly and hugely: a 4 MiB manifest
  // of a million empty objects, or of 260k annotations, took it past the
  // 15 s timeout and its resident memory past 10 GiB. It gets far fewer
  // requests, and not those two.
  const plan = {
    berth: { count: cfg.fuzz },
    reference: { count: cfg.fuzzReference, exclude: /million empty objects|annotations/ },
  };
  for (const which of order) {
    const t = targets[which];
    const { count, exclude } = plan[which];
    if (count === 0) continue;
    const before = t.mem.peakHwmMiB();
    const m = await measure(which, 'fuzz', () => runFuzz({ base: t.srv.base, count, exclude }), `${count} malformed requests`);
    const r = m.value;
    const fiveXX = Object.entries(r.statuses).filter(([s]) => Number(s) >= 500).reduce((n, [, v]) => n + v, 0);
    fuzz[which] = { 'fuzz.peakMiB': t.mem.peakHwmMiB(), 'fuzz.growthMiB': t.mem.peakHwmMiB() - before, 'fuzz.cpuMs': (1000 * m.cpu) / count, 'fuzz.fiveXX': fiveXX };
    fuzzDetail[which] = { ...r, count, excluded: exclude?.source, hwmBeforeMiB: before, cpu: m.cpu };
    log(`  ${which}: ${count} malformed requests in ${r.seconds.toFixed(0)} s; statuses ${JSON.stringify(r.statuses)}; Σ VmHWM ${before.toFixed(0)} → ${fuzz[which]['fuzz.peakMiB'].toFixed(0)} MiB`);
    for (const f of r.fiveXX.slice(0, 5)) log(`  ${which}: ${f.status} for "${f.name}"`);
  }
}

// ── totals, memory, report ─────────────────────────────────────────────────
const during = noise.read();
const totals = {};
for (const which of order) {
  const t = targets[which];
  totals[which] = {
    'total.cpuSeconds': afterRounds[which].cpu - cpu0[which],
    'total.peakMiB': afterRounds[which].hwm,
    ...Object.fromEntries(Object.entries(phasePeak[which]).map(([g, v]) => [`rss.${g}.MiB`, v])),
  };
  t.mem.stop();
  t.reg.close();
}

// ── restart: spawn → first 200 on /v2/, on the data the run left ────────────
const startup = { berth: {}, reference: {} };
if (cfg.phases.has('startup')) {
  await Promise.all(servers.map((srv) => srv.stop()));
  const spawns = {
    berth: berthSpawn(mainJs, path.join(tmp, 'berth'), { ...berthOpts, extraArgs: [] }),
    reference: referenceSpawn(referenceBin, path.join(tmp, 'reference')),
  };
  const times = { berth: [], reference: [] };
  const cpus = { berth: [], reference: [] };
  for (let i = 0; i < cfg.startups; i++) {
    for (const which of order) {
      step = `${which}: restart ${i + 1}`;
      const r = await timeStartup(spawns[which]);
      times[which].push(r.ms);
      cpus[which].push(r.cpu);
    }
  }
  log(`restarts to the first 200: Berth ${times.berth.map((v) => v.toFixed(0)).join(', ')} ms; reference ${times.reference.map((v) => v.toFixed(0)).join(', ')} ms`);
  for (const which of order) {
    startup[which] = { 'startup.ms': median(times[which]), 'startup.maxMs': Math.max(...times[which]), 'startup.cpuMs': 1000 * median(cpus[which]) };
  }
}
await cleanup();

const sections = [];
const M = (key, label, unit, better) => ({ key, label, unit, better });
if (cfg.phases.has('push') || cfg.phases.has('pull')) {
  const size = cfg.blobBytes >= GiB ? `${cfg.blobBytes / GiB} GiB` : `${cfg.blobBytes / MiB} MiB`;
  sections.push({
    section: `1. push one ${size} blob`,
    metrics: [
      M('push.mono.mbps', 'monolithic (POST+PUT)', 'MB/s', 'higher'),
      M('push.mono.cpuPerGiB', 'monolithic: server CPU', 'CPU-s/GiB', 'lower'),
      ...(cfg.phases.has('push')
        ? [
            M('push.chunked.mbps', `chunked (${cfg.chunkBytes / MiB} MiB PATCHes)`, 'MB/s', 'higher'),
            M('push.chunked.cpuPerGiB', 'chunked: server CPU', 'CPU-s/GiB', 'lower'),
            M('disk.mbps', `the disk: ${size} written, then fdatasync (same for both)`, 'MB/s', 'higher'),
            M('push.mono.ofDisk', '  monolithic push / disk', '×', 'higher'),
            M('push.chunked.ofDisk', '  chunked push / disk', '×', 'higher'),
          ]
        : []),
    ],
  });
}
if (cfg.phases.has('pull')) {
  sections.push({
    section: `2. pull it (${pullClient}, then a raw node:net client; one stream: ${cfg.pullRepeats} pulls in a row)`,
    metrics: [
      M('pull.single.mbps', 'one stream', 'MB/s', 'higher'),
      M('pull.single.cpuPerGiB', 'one stream: server CPU', 'CPU-s/GiB', 'lower'),
      M('pull.parallel.mbps', `${cfg.pullStreams} concurrent streams (total)`, 'MB/s', 'higher'),
      M('pull.parallel.cpuPerGiB', `${cfg.pullStreams} streams: server CPU`, 'CPU-s/GiB', 'lower'),
      M('pull.raw.single.mbps', 'one stream, raw socket client', 'MB/s', 'higher'),
      M('pull.raw.single.cpuPerGiB', '  server CPU', 'CPU-s/GiB', 'lower'),
      M('pull.raw.parallel.mbps', `${cfg.pullStreams} streams, raw socket client (total)`, 'MB/s', 'higher'),
      M('pull.raw.parallel.cpuPerGiB', '  server CPU', 'CPU-s/GiB', 'lower'),
      M('pull.range.ms', 'Range: last 1 MiB, latency (median)', 'ms', 'lower'),
      M('pull.range.cpuMs', 'Range: server CPU', 'CPU-ms/req', 'lower'),
    ],
  });
}
if (cfg.phases.has('small')) {
  sections.push({
    section: `3. small requests, ${cfg.connections} connections × ${cfg.loadSeconds} s (${loadgen})`,
    metrics: smallOps.flatMap((op) => [
      M(`small.${op.key}.rps`, `${op.label}`, 'req/s', 'higher'),
      M(`small.${op.key}.cpuUs`, `  server CPU`, 'CPU-µs/req', 'lower'),
      M(`small.${op.key}.p50`, `  p50`, 'ms', 'lower'),
      M(`small.${op.key}.p99`, `  p99`, 'ms', 'lower'),
    ]),
  });
}
if (cfg.phases.has('blobs')) {
  sections.push({
    section: `4. ${cfg.smallBlobs} distinct 4 KiB blobs, concurrency ${cfg.smallBlobConcurrency} (POST+PUT), ${cfg.smallBlobWarmup > 0 ? `after ${cfg.smallBlobWarmup} untimed` : 'no warm-up'}`,
    metrics: [M('blobs.perSec', 'pushed', 'blobs/s', 'higher'), M('blobs.cpuMs', 'server CPU', 'CPU-ms/blob', 'lower')],
  });
  if (cfg.smallBlobFirstPass > 0) {
    sections.push({
      section: OUT
        ? `   the first ${cfg.smallBlobFirstPass}, the fresh servers' first requests: a cold server (one run, not alternated)`
        : `   the first ${cfg.smallBlobFirstPass} of the run, before round 1: a cold server (one run, not alternated)`,
      once: true,
      metrics: [M('blobs.firstPass.perSec', 'pushed', 'blobs/s', 'higher'), M('blobs.firstPass.cpuMs', 'server CPU', 'CPU-ms/blob', 'lower')],
    });
  }
}
if (cfg.phases.has('list')) {
  sections.push({
    section: `5. listings: ${cfg.repos} repositories, one with ${cfg.tags} tags, n=${cfg.page}`,
    metrics: [
      M('list.catalogWalk.ms', '_catalog full walk', 'ms', 'lower'),
      M('list.catalogWalk.cpuMs', '  server CPU', 'CPU-ms', 'lower'),
      M('list.catalogFirst.ms', '_catalog first page (median of 20)', 'ms', 'lower'),
      M('list.catalogFirst.cpuMs', '  server CPU', 'CPU-ms', 'lower'),
      M('list.tagsWalk.ms', 'tags/list full walk', 'ms', 'lower'),
      M('list.tagsWalk.cpuMs', '  server CPU', 'CPU-ms', 'lower'),
      M('list.tagsAll.ms', 'tags/list without n (one response)', 'ms', 'lower'),
      M('list.tagsAll.cpuMs', '  server CPU', 'CPU-ms', 'lower'),
    ],
  });
  sections.push({
    section: '   seeding through the API, concurrency 16 (one run, not alternated)',
    once: true,
    metrics: [
      M('seed.repos.perSec', 'repositories (2 mounts + manifest PUT)', 'repos/s', 'higher'),
      M('seed.repos.cpuMs', '  server CPU', 'CPU-ms/repo', 'lower'),
      M('seed.tags.perSec', 'tags (manifest PUT by tag)', 'tags/s', 'higher'),
      M('seed.tags.cpuMs', '  server CPU', 'CPU-ms/tag', 'lower'),
    ],
  });
}
sections.push({
  section: '6. the server process tree over the rounds (one run; the soak and fuzz phases come after)',
  once: true,
  metrics: [
    M('total.peakMiB', 'peak resident memory (Σ VmHWM)', 'MiB', 'lower'),
    M('total.cpuSeconds', 'total CPU', 'CPU-s', 'lower'),
    ...['seed', 'push', 'pull', 'small', 'blobs', 'list', 'soak', 'fuzz']
      .filter((g) => phasePeak.berth[g] !== undefined)
      .map((g) => M(`rss.${g}.MiB`, `  peak RSS while ${g === 'small' ? 'small requests' : g === 'list' ? 'listing' : g === 'seed' ? 'seeding' : g === 'push' ? 'pushing' : g === 'pull' ? 'pulling' : g === 'fuzz' ? 'fuzzing' : g === 'soak' ? 'soaking' : 'pushing small blobs'}`, 'MiB', 'lower')),
  ],
});

if (cfg.phases.has('soak')) {
  sections.push({
    section: `7. mixed soak, ${cfg.connections} connections × ${cfg.soakSeconds} s: half push a small image (2 blobs POST+PUT, manifest PUT), half pull one (manifest GET, blob GET)`,
    once: true,
    metrics: [
      M('soak.images.perSec', 'images pushed', 'images/s', 'higher'),
      M('soak.cpuMs', '  server CPU per image pushed (pulls included)', 'CPU-ms', 'lower'),
      M('soak.push.p50', 'push requests p50', 'ms', 'lower'),
      M('soak.push.p99', 'push requests p99', 'ms', 'lower'),
      M('soak.push.max', 'push requests max', 'ms', 'lower'),
      M('soak.pull.p50', 'pull requests p50', 'ms', 'lower'),
      M('soak.pull.p99', 'pull requests p99', 'ms', 'lower'),
      M('soak.errors', 'failed requests', 'count', 'lower'),
    ],
  });
}
if (cfg.phases.has('fuzz')) {
  sections.push({
    section: `8. malformed requests one at a time (oversize, truncated, deeply nested manifests, bad digests, huge headers, bad ranges…): Berth ${cfg.fuzz}, reference ${cfg.fuzzReference} (not its two slowest kinds)`,
    once: true,
    metrics: [
      M('fuzz.peakMiB', 'peak resident memory by the end (Σ VmHWM)', 'MiB', 'lower'),
      M('fuzz.growthMiB', '  growth of that peak during the fuzz', 'MiB', 'lower'),
      M('fuzz.cpuMs', '  server CPU', 'CPU-ms/req', 'lower'),
      M('fuzz.fiveXX', '  5xx answers (must be 0)', 'count', 'lower'),
    ],
  });
}
if (cfg.phases.has('startup')) {
  sections.push({
    section: `9. restart on the run's data: spawn → first 200 on GET /v2/ (${cfg.startups} restarts each, alternated, after the rounds)`,
    once: true,
    metrics: [
      M('startup.ms', 'time to first 200 (median)', 'ms', 'lower'),
      M('startup.maxMs', '  slowest', 'ms', 'lower'),
      M('startup.cpuMs', '  server CPU by then (median)', 'CPU-ms', 'lower'),
    ],
  });
}

const onceRound = [
  { berth: { ...seedResults.berth, ...totals.berth, ...startup.berth, ...fuzz.berth, ...soak.berth }, reference: { ...seedResults.reference, ...totals.reference, ...startup.reference, ...fuzz.reference, ...soak.reference } },
];
const rows = [];
const summary = [];
for (const s of sections) {
  rows.push({ section: s.section });
  const sum = summarise(s.metrics, s.once ? onceRound : rounds);
  rows.push(...sum);
  summary.push({ section: s.section, metrics: sum });
}

// ── machine noise ──────────────────────────────────────────────────────────
const warnings = [];
if (before.loadavg[0] > before.cpus || before.otherPct > 10 || before.stealPct > 2) {
  warnings.push(
    `machine was busy before the run: load average ${before.loadavg.join(' ')} on ${before.cpus} CPUs, other processes ${before.otherPct.toFixed(0)}%, steal ${before.stealPct.toFixed(1)}%`,
  );
}
if (during.otherPct > 10 || during.stealPct > 2) {
  warnings.push(`machine was busy during the run: other processes used ${during.otherPct.toFixed(0)}% of all CPUs, steal ${during.stealPct.toFixed(1)}%`);
}
const noisyRounds = rounds.map((r, i) => [i + 1, r.noise]).filter(([, n]) => n.otherPct > 10 || n.stealPct > 2);
if (noisyRounds.length) warnings.push(`noisy rounds: ${noisyRounds.map(([i, n]) => `${i} (other ${n.otherPct.toFixed(0)}%, steal ${n.stealPct.toFixed(1)}%)`).join(', ')}`);


const seconds = (Date.now() - started.getTime()) / 1000;
const title = `Berth ${gitCommit} vs ${referenceVersion} — ${cfg.quick ? 'QUICK (smoke) run, ' : ''}${OUT ? 'OUTSIDE mode (no warm-up), ' : ''}${cfg.rounds} round${cfg.rounds === 1 ? '' : 's'}, ${os.cpus().length} CPUs, ${seconds.toFixed(0)} s
"× better" > 1 means Berth did better: Berth/reference for ↑ metrics, reference/Berth for ↓ metrics. Values are medians over rounds; "per round" is each round's pair ratio.
CPU is the server's whole process tree (/proc utime+stime), the number to trust on a shared machine.`;
console.log('');
console.log(table(rows, { title }));
console.log('');
console.log(
  `machine: load average ${before.loadavg.join(' ')} before; other processes ${before.otherPct.toFixed(0)}% before, ${during.otherPct.toFixed(0)}% during; steal ${during.stealPct.toFixed(1)}%; bench+servers ${during.ownPct.toFixed(0)}% of ${os.cpus().length} CPUs`,
);
for (const w of warnings) console.log(`WARNING: ${w} — ratios are less reliable`);
if (smallAuth) console.log(`\n${authReport(smallAuth, cfg, loadgen)}`);
if (search) console.log(`\n${searchReport(search)}`);
if (searchPostgres) console.log(`\n${searchReport(searchPostgres)}`);
const smallErrors = rounds.flatMap((r) => order.flatMap((w) => Object.entries(r[w]).filter(([k, v]) => k.endsWith('.errors') && v > 0).map(([k, v]) => `${w} ${k}=${v}`)));
if (smallErrors.length) console.log(`WARNING: failed requests under load: ${smallErrors.join(', ')}`);
const disk = rounds.map((r) => r.diskMBps).filter((v) => v !== undefined);
if (disk.length) {
  const median = [...disk].sort((a, b) => a - b)[disk.length >> 1];
  const refPush = summary.flatMap((s) => s.metrics).find((m) => m.key === 'push.mono.mbps')?.reference;
  console.log(
    `disk: ${disk.map((v) => v.toFixed(0)).join(', ')} MB/s (median ${median.toFixed(0)}) writing ${cfg.blobBytes / MiB} MiB, then one fdatasync, in the data directory` +
      ` (both fsync a pushed blob's file before answering; Berth also fsyncs its directory${refPush ? `; 3× its push is ${(3 * refPush).toFixed(0)} MB/s` : ''})`,
  );
}
const pagesNote = rounds[0]?.reference['list.tagsWalk.pages'];
if (pagesNote !== undefined) {
  console.log(
    `pages walked: _catalog ${rounds[0].berth['list.catalogWalk.pages']} (Berth) / ${rounds[0].reference['list.catalogWalk.pages']} (reference); tags/list ${rounds[0].berth['list.tagsWalk.pages']} / ${pagesNote}`,
  );
}

const result = {
  date: started.toISOString(),
  seconds,
  berth: { commit: gitCommit, node: process.version },
  reference: { version: referenceVersion },
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memMiB: Math.round(os.totalmem() / MiB), before, during },
  warnings,
  config: { ...cfg, phases: [...cfg.phases], loadgen, pullClient, wrkThreads: wrkBin ? wrkThreads : undefined },
  summary,
  rounds,
  seed: seedResults,
  totals,
  startup,
  fuzz: { ...fuzz, detail: fuzzDetail },
  soak,
  smallAuth,
  search,
  searchPostgres,
};
mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
const stamped = path.join(path.dirname(outFile), `${cfg.quick ? 'quick' : 'full'}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
copyFileSync(outFile, stamped);
console.log(`\nJSON: ${path.relative(process.cwd(), outFile)} (and ${path.relative(process.cwd(), stamped)})`);
if (opt['cpu-prof']) console.log(`CPU profiles: ${path.relative(process.cwd(), profDir)}/ (open in Chrome DevTools → Performance)`);
