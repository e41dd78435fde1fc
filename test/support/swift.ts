/**
 * A real S3 API for tests: OpenStack Swift (Debian's swift 2.30 packages)
 * with its s3api middleware, as one node with one replica on a temporary
 * directory. `startSwift` writes the configuration, builds the rings, starts
 * the account, container, object and proxy servers on free 127.0.0.1 ports
 * and waits until the proxy answers. tempauth maps the S3 access key
 * `test:tester` (secret `testing`) to the Swift account AUTH_test.
 *
 * scripts/run-tests.mjs starts one for a whole test run and passes it on in
 * BERTH_TEST_S3_* variables; `s3Engine` uses those when set and otherwise
 * starts its own, so a single test file can be run alone. Run it by hand
 * with `node dist/test/support/swift.js` (prints the endpoint, keeps running).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { aptInstall, freePort, run, whichTool } from './tools.js';

export interface S3Engine {
  endpoint: string;
  region: string;
  accessKey: string;
  secretKey: string;
  /** Stops the engine if this process started it (a shared one is left to its owner). */
  stop(): Promise<void>;
}

const PACKAGES = ['swift', 'swift-proxy', 'swift-account', 'swift-container', 'swift-object'];
const SERVERS = ['account', 'container', 'object'] as const;

/** Installs Debian's Swift packages when a server program is missing; fails loudly when that fails. */
async function ensureSwift(): Promise<void> {
  const missing: string[] = [];
  for (const bin of ['swift-ring-builder', 'swift-proxy-server', 'swift-account-server', 'swift-container-server', 'swift-object-server']) {
    if (!(await whichTool(bin))) missing.push(bin);
  }
  if (missing.length === 0) return;
  try {
    await aptInstall(PACKAGES);
  } catch (err) {
    throw new Error(`OpenStack Swift is needed for the object-store tests (missing ${missing.join(', ')}) and installing ${PACKAGES.join(' ')} failed: ${(err as Error).message}`);
  }
  for (const bin of missing) if (!(await whichTool(bin))) throw new Error(`installed ${PACKAGES.join(' ')} but ${bin} is still not on PATH`);
}

function serverConf(dir: string, port: number, user: string, kind: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
devices = ${dir}/srv
mount_check = false
swift_dir = ${dir}/etc
user = ${user}
workers = 0
log_name = ${kind}
log_level = WARNING
fallocate_reserve = 0
disable_fallocate = true

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

function proxyConf(dir: string, port: number, user: string): string {
  // s3api before tempauth (it turns the S3 signature into a Swift identity);
  // slo and copy after it (multipart uploads and UploadPartCopy are built on them).
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
swift_dir = ${dir}/etc
user = ${user}
workers = 0
log_name = proxy
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:1
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`;
}

async function waitForProxy(url: string, children: ChildProcess[], logs: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`a Swift server exited (${dead.spawnargs.join(' ')}, code ${dead.exitCode}); its log: ${(await readFile(logs, 'utf8').catch(() => '')).slice(-3000)}`);
    try {
      const r = await fetch(`${url}/healthcheck`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Swift proxy did not answer at ${url} within 60s; log: ${(await readFile(logs, 'utf8').catch(() => '')).slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts a one-node Swift with s3api; the caller stops it. */
export async function startSwift(): Promise<S3Engine> {
  await ensureSwift();
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-swift-'));
  const user = userInfo().username;
  await mkdir(path.join(dir, 'etc'));
  await mkdir(path.join(dir, 'srv', 'd1'), { recursive: true });
  await writeFile(
    path.join(dir, 'etc', 'swift.conf'),
    `[swift-hash]\nswift_hash_path_suffix = ${randomBytes(8).toString('hex')}\nswift_hash_path_prefix = ${randomBytes(8).toString('hex')}\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n`,
  );
  const ports = { account: await freePort(), container: await freePort(), object: await freePort(), proxy: await freePort() };
  for (const kind of SERVERS) {
    const builder = path.join(dir, 'etc', `${kind}.builder`);
    // 2^6 partitions, 1 replica, parts may move again after 0 hours.
    await run('swift-ring-builder', [builder, 'create', '6', '1', '0']);
    await run('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${ports[kind]}/d1`, '100']);
    await run('swift-ring-builder', [builder, 'rebalance']).catch((err: unknown) => {
      // rebalance exits 1 with a warning (e.g. "balance is off") yet writes the ring; a missing ring is caught below.
      if (!/Reassigned|balance/i.test(String((err as { stdout?: string }).stdout ?? ''))) throw err;
    });
    await writeFile(path.join(dir, 'etc', `${kind}-server.conf`), serverConf(dir, ports[kind], user, kind));
  }
  await writeFile(path.join(dir, 'etc', 'proxy-server.conf'), proxyConf(dir, ports.proxy, user));
  const logs = path.join(dir, 'swift.log');
  const logFd = openSync(logs, 'a');
  const children: ChildProcess[] = [];
  try {
    for (const kind of [...SERVERS, 'proxy']) {
      // Output goes to a file, not a pipe: run-tests.mjs blocks its event loop while the tests run.
      children.push(spawn(`swift-${kind}-server`, [path.join(dir, 'etc', `${kind}-server.conf`)], { stdio: ['ignore', logFd, logFd], detached: false }));
    }
  } finally {
    closeSync(logFd);
  }
  const endpoint = `http://127.0.0.1:${ports.proxy}`;
  // The servers do not keep a test process alive; they go when it exits, whatever ends it.
  for (const c of children) c.unref();
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  const atExit = () => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', atExit);
  const stop = async () => {
    process.removeListener('exit', atExit);
    killAll();
    // A timer keeps the event loop alive while the (unreferenced) servers exit.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await Promise.race([
        Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))),
        new Promise((r) => setTimeout(r, 10_000)),
      ]);
    } finally {
      clearInterval(keepAlive);
    }
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForProxy(endpoint, children, logs);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, region: 'us-east-1', accessKey: 'test:tester', secretKey: 'testing', stop };
}

let shared: Promise<S3Engine> | undefined;

/**
 * The engine for this test process: the one scripts/run-tests.mjs started
 * (BERTH_TEST_S3_ENDPOINT …), or one started here and stopped at exit.
 */
export function s3Engine(): Promise<S3Engine> {
  const endpoint = process.env.BERTH_TEST_S3_ENDPOINT;
  if (endpoint) {
    return Promise.resolve({
      endpoint,
      region: process.env.BERTH_TEST_S3_REGION ?? 'us-east-1',
      accessKey: process.env.BERTH_TEST_S3_ACCESS_KEY ?? 'test:tester',
      secretKey: process.env.BERTH_TEST_S3_SECRET_KEY ?? 'testing',
      stop: async () => {},
    });
  }
  // Kept for the whole process (several suites in one file share it); its servers go when the process exits.
  shared ??= startSwift().then((engine) => ({ ...engine, stop: async () => {} }));
  return shared;
}

/** The variables scripts/run-tests.mjs passes to test processes. */
export function engineEnv(engine: S3Engine): Record<string, string> {
  return {
    BERTH_TEST_S3_ENDPOINT: engine.endpoint,
    BERTH_TEST_S3_REGION: engine.region,
    BERTH_TEST_S3_ACCESS_KEY: engine.accessKey,
    BERTH_TEST_S3_SECRET_KEY: engine.secretKey,
  };
}

// `node dist/test/support/swift.js`: start one by hand and keep it until Ctrl-C.
if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  const engine = await startSwift();
  console.log(JSON.stringify(engineEnv(engine), null, 2));
  process.on('SIGINT', () => void engine.stop().then(() => process.exit(0)));
}
