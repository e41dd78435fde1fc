// Starts Berth and the reference registry (Debian's docker-registry,
// distribution 2.8.x) on 127.0.0.1 with fresh data directories, and
// installs what is missing. Every child and temp dir is registered for cleanup.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { treeCpuSeconds } from './proc.mjs';

const children = new Set();
const tempDirs = new Set();

export function trackTempDir(dir) {
  tempDirs.add(dir);
}

/** Synchronous last-resort cleanup (process 'exit'). */
export function cleanupSync() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  children.clear();
  const many = [...tempDirs].some((dir) => holdsMany(dir, 1000));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
  if (!many) return;
  try {
    writeFileSync(REMOVED_STAMP, String(Date.now()));
  } catch {
    // only a later run's wait depends on it
  }
}

/** Whether the tree under `dir` has more than `limit` entries (it stops counting there). */
function holdsMany(dir, limit) {
  let seen = 0;
  const walk = (d) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return false;
    }
    for (const e of entries) {
      if (++seen > limit) return true;
      if (e.isDirectory() && walk(path.join(d, e.name))) return true;
    }
    return false;
  };
  return walk(dir);
}

/** When a run last removed its data directories (ms since the epoch, in the file). */
const REMOVED_STAMP = path.join(os.tmpdir(), 'berth-bench-removed');

/**
 * Whether `dir` is on ext4 without a journal (this kind of VM's root
 * filesystem). There, an inode freed less than a minute ago (longer while
 * its inode-table block is still dirty) is passed over when a file is
 * created, and every creation scans past each such inode again: for a minute
 * after a run removes its tens of thousands of files, a push that creates
 * files costs up to nine times the kernel CPU (`docs/performance.md`).
 */
function ext4WithoutJournal(dir) {
  try {
    const st = statSync(dir);
    const [major, minor] = [Math.floor(st.dev / 256) & 0xfff, (st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)];
    const name = /DEVNAME=(\S+)/.exec(readFileSync(`/sys/dev/block/${major}:${minor}/uevent`, 'utf8'))?.[1];
    if (!name) return false;
    return existsSync(`/proc/fs/ext4/${name}`) && !readdirSync('/proc/fs/jbd2').some((j) => j.startsWith(`${name}-`));
  } catch {
    return false;
  }
}

/**
 * Waits until the previous run's removal is 65 s old when the data
 * directories are on ext4 without a journal (see ext4WithoutJournal), so a
 * run's figures, the cold server's first pushes most of all, do not depend
 * on how soon it followed the last one. Returns the seconds waited.
 */
export async function waitForFreedInodes(dir, log) {
  let removed;
  try {
    removed = Number(readFileSync(REMOVED_STAMP, 'utf8'));
  } catch {
    return 0;
  }
  const wait = removed + 65_000 - Date.now();
  if (!(wait > 0) || !ext4WithoutJournal(dir)) return 0;
  log(`waiting ${Math.ceil(wait / 1000)} s: ext4 without a journal passes over inodes freed in the last minute (the previous run's removal) on every file created`);
  spawnSync('sync');
  await new Promise((r) => setTimeout(r, wait));
  return wait / 1000;
}

export function trackChild(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** apt-get install when missing (root only); returns the binary's path or undefined. */
export function ensureDebianTool(bin, pkg, { required }) {
  let found = which(bin);
  if (found) return found;
  const log = (m) => process.stderr.write(`bench: ${m}\n`);
  if (process.getuid?.() !== 0) {
    if (required) throw new Error(`${bin} is missing and installing ${pkg} needs root: apt-get install ${pkg}`);
    return undefined;
  }
  log(`installing Debian package ${pkg}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => spawnSync('flock', ['/tmp/berth-test-apt.lock', 'apt-get', ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  let r = apt(['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=600', pkg]);
  if (r.status !== 0) {
    apt(['update', '-qq']);
    r = apt(['install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=600', pkg]);
  }
  found = which(bin);
  if (!found && required) throw new Error(`could not install ${pkg}`);
  return found;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Builds Berth as committed at `rev` (git archive of src/, test/ and tsconfig.json
 * into `dir`, node_modules linked from the work tree), so a benchmark is not
 * disturbed by edits in progress. Returns the entry point.
 */
export function buildCommit(repoRoot, rev, dir) {
  mkdirSync(dir, { recursive: true });
  const has = (file) => spawnSync('git', ['-C', repoRoot, 'cat-file', '-e', `${rev}:${file}`]).status === 0;
  const native = has('binding.gyp');
  // Since 2ea94cf the build bundles some dependencies into dist/vendor (the server loads them from there).
  const vendor = has('scripts/build-vendor.mjs');
  const paths = ['src', 'test', 'bin', 'tsconfig.json', 'package.json', ...(native ? ['binding.gyp'] : []), ...(vendor ? ['scripts/build-vendor.mjs'] : [])];
  const tar = spawnSync('sh', ['-c', `git -C "$0" archive "$1" ${paths.join(' ')} | tar -x -C "$2"`, repoRoot, rev, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (tar.status !== 0) throw new Error(`git archive ${rev} failed`);
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  if (native) buildAddon(dir);
  process.stderr.write(`bench: building Berth at ${rev} (tsc)\n`);
  const tsc = path.join(repoRoot, 'node_modules/.bin/tsc');
  const r = spawnSync(tsc, ['-p', 'tsconfig.json'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  const main = path.join(dir, 'dist/src/cli/main.js');
  if (r.status !== 0 || !existsSync(main)) throw new Error(`Berth at ${rev} does not compile`);
  if (vendor && spawnSync(process.execPath, ['scripts/build-vendor.mjs'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] }).status !== 0) {
    throw new Error(`Berth at ${rev}: scripts/build-vendor.mjs failed`);
  }
  return main;
}

/** Builds src/native into build/Release with node-gyp (package.json's install script). */
function buildAddon(dir) {
  process.stderr.write(`bench: building the native addon in ${dir}\n`);
  const r = spawnSync('npm', ['run', '--silent', 'install'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`the native addon does not build in ${dir} (npm run install)`);
}

/** Installs npm dependencies and compiles when dist is missing or older than src (as bin/berth does). */
export function ensureBerthBuilt(repoRoot, { build = true } = {}) {
  const log = (m) => process.stderr.write(`bench: ${m}\n`);
  if (!existsSync(path.join(repoRoot, 'node_modules/kysely')) || !existsSync(path.join(repoRoot, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))) {
    log('npm ci (the SQLite driver compiles once, about two minutes)');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (existsSync(path.join(repoRoot, 'binding.gyp')) && !existsSync(path.join(repoRoot, 'build/Release/berth_native.node'))) buildAddon(repoRoot);
  const main = path.join(repoRoot, 'dist/src/cli/main.js');
  if (build && (!existsSync(main) || newestMtime(path.join(repoRoot, 'src')) > statSync(main).mtimeMs)) {
    log('building Berth (tsc)');
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('Berth does not compile (npx tsc -p tsconfig.json failed): fix the build, or pass --no-build to measure dist/ as it is');
  }
  return main;
}

async function waitReady(base, child, output) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before serving:\n${output()}`);
    const ok = await new Promise((resolve) => {
      const req = http.get(`${base}/v2/`, { agent: false, timeout: 1000 }, (res) => {
        res.resume();
        // 401: a server with accounts on challenges an anonymous GET /v2/, and is up.
        res.on('end', () => resolve(res.statusCode === 200 || res.statusCode === 401));
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server did not answer on ${base} within 30 s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function launch(name, makeSpawn) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { cmd, args, env } = makeSpawn(port);
    const child = trackChild(spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    const collect = (b) => {
      out = (out + b.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitReady(base, child, () => out);
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 5 && /address already in use|EADDRINUSE/i.test(out)) continue;
      throw e;
    }
    let stopped;
    return {
      name,
      base,
      pid: child.pid,
      output: () => out,
      status: () => (child.exitCode === null && child.signalCode === null ? 'running' : `exited (${child.exitCode ?? child.signalCode})`),
      stop: () =>
        (stopped ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(t);
          }
        })()),
    };
  }
}

/** The V8 flags bin/berth starts node with, read from its `exec node …` line, so the bench runs Berth as users do. */
export function berthNodeFlags(binBerth) {
  const line = readFileSync(binBerth, 'utf8').match(/^exec node (.*?) "\$root/m);
  if (!line) throw new Error(`${binBerth}: no "exec node <flags> \"$root…" line to take node's flags from`);
  return line[1].split(/\s+/).filter((f) => f.startsWith('--') && f !== '--enable-source-maps');
}

/** How to start Berth on a port: { cmd, args, env }. */
export function berthSpawn(mainJs, dataDir, { extraArgs = [], extraEnv = {}, nodeFlags = [] } = {}) {
  return (port) => ({
    cmd: process.execPath,
    args: [...extraArgs, ...nodeFlags, mainJs, 'serve'],
    env: {
      // Only our REGISTRY_* overrides: none meant for anything else.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))),
      REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dataDir,
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
      REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
      REGISTRY_LOG_LEVEL: 'error',
      ...extraEnv,
    },
  });
}

export function startBerth(mainJs, dataDir, opts = {}) {
  mkdirSync(dataDir, { recursive: true });
  return launch('berth', berthSpawn(mainJs, dataDir, opts));
}

/** How to start the reference on a port (its config file written in `dir`): { cmd, args, env }. */
export function referenceSpawn(bin, dir) {
  return (port) => {
    const configFile = path.join(dir, 'config.yml');
    // JSON is YAML. The blob-descriptor cache is on as in Debian's and the
    // registry:2 image's shipped config: the reference as people run it.
    writeFileSync(
      configFile,
      JSON.stringify({
        version: 0.1,
        log: { level: 'error', accesslog: { disabled: true } },
        storage: { filesystem: { rootdirectory: path.join(dir, 'storage') }, delete: { enabled: true }, cache: { blobdescriptor: 'inmemory' } },
        http: { addr: `127.0.0.1:${port}` },
      }),
    );
    // Its environment must not carry REGISTRY_* overrides meant for anything else.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
    return { cmd: bin, args: ['serve', configFile], env };
  };
}

export function startReference(bin, dir) {
  mkdirSync(dir, { recursive: true });
  return launch('reference', referenceSpawn(bin, dir));
}

/**
 * Start-up time: spawns the server (`makeSpawn(port)`) on its existing data
 * and polls GET /v2/ on a fresh connection every 5 ms until one answers 200.
 * Returns milliseconds from spawn to that 200, and the process's CPU
 * seconds by then; the server is stopped (SIGTERM) before it resolves.
 */
export async function timeStartup(makeSpawn) {
  const port = await freePort();
  const { cmd, args, env } = makeSpawn(port);
  const t0 = process.hrtime.bigint();
  const child = trackChild(spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${cmd} exited before serving:\n${err}`);
      const status = await new Promise((resolve) => {
        const req = http.get(`http://127.0.0.1:${port}/v2/`, { agent: false, timeout: 1000 }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', () => resolve(0));
        req.on('timeout', () => req.destroy());
      });
      if (status === 200) break;
      if (Number(process.hrtime.bigint() - t0) > 60e9) throw new Error(`${cmd} did not answer 200 within 60 s:\n${err}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = treeCpuSeconds(child.pid);
    return { ms, cpu };
  } finally {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}
