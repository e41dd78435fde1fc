/**
 * Real container clients for end-to-end tests: dockerd + the docker CLI,
 * podman, and containerd + ctr, all from Debian's packages (installed with
 * apt when missing). Each instance gets its own state directories, sockets
 * and client configuration under /tmp, so a test never reads or writes the
 * machine's /var/lib/docker, /var/lib/containerd, ~/.docker or
 * /etc/containers/storage.conf, and two test processes never share a daemon.
 *
 * Every daemon is killed and its directories removed by stop()/close(), and
 * also when the test process exits (or gets SIGINT/SIGTERM) without calling it.
 * Errors from a daemon, or from a client talking to one, carry the tail of the
 * daemon's log.
 *
 * What is known about these versions (Debian 12: docker.io 20.10.24,
 * podman 4.3.1, containerd 1.6.20), found by running them here:
 *  - dockerd treats 127.0.0.0/8 registries as insecure by default, so no
 *    --insecure-registry is needed for Berth on 127.0.0.1.
 *  - dockerd's own managed containerd runs with containerd's `opt` plugin,
 *    which creates /opt/containerd; we therefore start our own containerd
 *    (with `opt` disabled) and point dockerd at it with --containerd.
 *    dockerd writes /etc/docker/key.json unless daemon.json sets
 *    `deprecated-key-path` (it is not a command-line flag in 20.10).
 *    The one path we cannot move is /run/docker/plugins, which dockerd
 *    hard-codes as the plugin exec root and creates empty. dockerd also
 *    bind-mounts its data root onto itself and leaves that mount behind when
 *    killed, so clean-up unmounts before it removes anything.
 *  - docker 20.10 keeps pulled manifests in containerd's content store
 *    (namespace "moby"): pulling the same digest again after `docker rmi`
 *    does not ask the registry for the manifest again.
 *  - podman keeps libpod's tmp dir in its database at first use, so it must
 *    come from the first run's --tmpdir; with the netavark backend it writes
 *    /run/containers/networks, with the CNI backend only a lock file in
 *    network_config_dir, so we use CNI (no container is ever run).
 *    containers/image's blob-info cache is /var/lib/containers/cache for
 *    root and cannot be moved from podman's command line; skopeo shares it.
 *    It only records where blobs were seen, so podman may mount a blob from
 *    another Berth repository instead of uploading it.
 *  - ctr's default snapshotter is overlayfs; we disable that plugin and use
 *    `native` (plain copies), which needs no kernel support.
 *
 * Authentication and TLS (Berth with htpasswd, and with a test CA from
 * test/support/tls.ts):
 *  - `Dockerd.login()` / `Podman.login()` run `docker login` / `podman login`
 *    with --password-stdin; credentials land in the private DOCKER_CONFIG /
 *    REGISTRY_AUTH_FILE. ctr takes credentials per command through
 *    `ctrRegistryArgs({ host, credentials })` (`--user`).
 *  - dockerd 20.10 always adds 127.0.0.0/8 to its insecure registries (it
 *    cannot be turned off), and for an insecure registry it speaks HTTPS with
 *    InsecureSkipVerify and never reads certs.d: against 127.0.0.1 any
 *    certificate is accepted. A TLS test therefore puts Berth on an address
 *    outside 127.0.0.0/8 (`externalIPv4()`). There, rootful dockerd reads CAs
 *    only from /etc/docker/certs.d/<host:port>/ca.crt, which
 *    `Dockerd.trustCA()` writes and stop() removes.
 *  - containers/image (podman, skopeo) reads /etc/docker/certs.d/<host:port>
 *    too, besides --cert-dir: a podman test that expects an unknown CA to be
 *    refused must not share a Berth with a docker test that trusts it.
 *  - ctr gets `--tlscacert` through `ctrRegistryArgs({ host, caFile })`
 *    (no --plain-http then).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { CommandError, ensureTool, formatCommand, run, whichTool, type RunOptions, type RunResult } from './tools.js';

// ---------------------------------------------------------------------------
// Registry access: how a client reaches Berth.

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Where Berth is and how to talk to it. */
export interface RegistryAccess {
  /** "<ip>:<port>" */
  host: string;
  /** For a Berth with htpasswd authentication. */
  credentials?: RegistryCredentials;
  /** For a Berth with TLS: PEM file of the CA that signed its certificate (else plain HTTP). */
  caFile?: string;
}

/** ctr's per-command registry flags for `images push|pull`. */
export function ctrRegistryArgs(access: RegistryAccess): string[] {
  const args = access.caFile ? ['--tlscacert', access.caFile] : ['--plain-http'];
  if (access.credentials) args.push('--user', `${access.credentials.username}:${access.credentials.password}`);
  return args;
}

/**
 * An IPv4 address of this machine outside 127.0.0.0/8: the only kind of
 * address at which dockerd verifies a registry's certificate (see above).
 */
export function externalIPv4(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
    }
  }
  throw new Error('no IPv4 address outside 127.0.0.0/8 on this machine: dockerd cannot be made to verify a registry certificate on loopback');
}

// ---------------------------------------------------------------------------
// Temporary directories and leak protection

/**
 * A fresh directory directly under /tmp with a short name: unix socket paths
 * are limited to 107 bytes and podman wants its runroot short, so these must
 * not depend on how long $TMPDIR is.
 */
async function shortTempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join('/tmp', prefix));
}

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/**
 * Unmounts whatever is mounted at or below `dir`, deepest first. dockerd
 * bind-mounts its data root onto itself and does not always undo it (never
 * when killed), and a mount point cannot be removed.
 */
function unmountUnder(dir: string): void {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of points) spawnSync('umount', ['--lazy', m], { stdio: 'ignore' });
}

/** Unmounts and removes a directory tree (both steps best-effort at the mount stage). */
async function removeDir(dir: string): Promise<void> {
  unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

interface Leftover {
  child?: ChildProcess;
  dirs: string[];
  /** Removed after `dirs`, in order, only if empty (shared parents such as /etc/docker/certs.d). */
  emptyDirs?: string[];
}

const leftovers = new Set<Leftover>();
let exitHooksInstalled = false;

function cleanUpSync(): void {
  for (const l of leftovers) {
    if (l.child && l.child.exitCode === null && l.child.signalCode === null) {
      try {
        l.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const d of l.dirs) {
      try {
        unmountUnder(d);
        rmSync(d, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
    for (const d of l.emptyDirs ?? []) {
      try {
        rmdirSync(d);
      } catch {
        // not empty (someone else's), or already gone
      }
    }
  }
  leftovers.clear();
}

/** Makes sure daemons and their directories do not outlive the test process. */
function track(l: Leftover): Leftover {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.on('exit', cleanUpSync);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const onSignal = () => {
        cleanUpSync();
        process.removeListener(sig, onSignal);
        // Nobody else handles it: die of the signal as we would have.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      process.on(sig, onSignal);
    }
  }
  leftovers.add(l);
  return l;
}

// ---------------------------------------------------------------------------
// Daemon processes

const LOG_LIMIT = 256 * 1024;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** A long-running child whose combined output is kept (the last 256 KiB) for error messages. */
class Daemon {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private log = '';
  private spawnError: Error | undefined;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.log = `$ ${formatCommand(cmd, args)}\n`;
    this.child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (b: Buffer) => {
      this.log += b.toString('utf8');
      if (this.log.length > LOG_LIMIT) this.log = this.log.slice(-LOG_LIMIT);
    };
    this.child.stdout!.on('data', append);
    this.child.stderr!.on('data', append);
    this.child.on('error', (e) => (this.spawnError = e));
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
  }

  get running(): boolean {
    return this.spawnError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of output, without dockerd's gRPC connection chatter. */
  logTail(lines = 40): string {
    return this.log
      .trimEnd()
      .split('\n')
      .filter((l) => !l.includes('module=grpc'))
      .slice(-lines)
      .join('\n');
  }

  /** An Error whose message ends with the daemon's log tail. */
  error(message: string): Error {
    return new Error(`${message}\n--- ${this.name} log (last lines) ---\n${this.logTail()}`);
  }

  /** Polls `ready` until it resolves true; fails early if the daemon dies, or at the deadline. */
  async waitUntil(what: string, ready: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.spawnError) throw this.error(`${this.name} could not be started: ${this.spawnError.message}`);
      if (!this.running) {
        throw this.error(`${this.name} exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before ${what}`);
      }
      if (await ready().catch(() => false)) return;
      if (Date.now() > deadline) throw this.error(`${this.name}: ${what} did not happen within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited after STOP_TIMEOUT_MS. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_TIMEOUT_MS)));
      const done = await Promise.race([this.exited.then(() => false), timedOut]);
      clearTimeout(timer);
      if (done && this.running) this.child.kill('SIGKILL');
    }
    if (this.spawnError === undefined) await this.exited;
  }
}

/** True once something accepts connections on the unix socket. */
function socketAccepts(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** GET `urlPath` over a unix socket; resolves to the status code. */
function httpStatusOverSocket(socketPath: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: urlPath, method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Runs a client command; on failure the error also carries the daemon's log tail. */
async function runAgainst(daemon: Daemon, cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  try {
    return await run(cmd, args, opts);
  } catch (e) {
    if (e instanceof CommandError) {
      throw new CommandError(
        `${e.message}\n--- ${daemon.name} log (last lines) ---\n${daemon.logTail()}`,
        e.commandLine,
        e.exitCode,
        e.signal,
        e.stdout,
        e.stderr,
      );
    }
    throw e;
  }
}

/** process.env without the variables that would point a client at some other daemon or config. */
function cleanEnv(dropPrefixes: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!dropPrefixes.some((p) => k.startsWith(p))) env[k] = v;
  }
  return env;
}

const CLIENT_TIMEOUT_MS = 120_000;

export interface ClientRunOptions {
  input?: string;
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------
// containerd + ctr

export interface Containerd {
  /** The gRPC socket. */
  address: string;
  /** The namespace ctr() uses unless its args say otherwise. */
  namespace: string;
  /** Runs `ctr --address … --namespace … <args>` with the native snapshotter. */
  ctr(args: string[], opts?: ClientRunOptions & { namespace?: string }): Promise<RunResult>;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export interface ContainerdOptions {
  /** Default namespace for ctr() (default "berth-test"). */
  namespace?: string;
}

// Plugins a registry client does not need, or that touch system paths:
// `opt` creates /opt/containerd; the snapshotters other than `native` need
// kernel or filesystem support; cri would start a Kubernetes runtime.
const DISABLED_CONTAINERD_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.internal.v1.opt',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.overlayfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

const tomlString = (s: string) => JSON.stringify(s);

/** Starts a private containerd (root, state and sockets in a fresh /tmp dir) and waits for its socket. */
export async function startContainerd(opts: ContainerdOptions = {}): Promise<Containerd> {
  const containerdBin = await ensureTool('containerd');
  const ctrBin = await ensureTool('ctr', 'containerd');
  const dir = await shortTempDir('bctd-');
  const leftover = track({ dirs: [dir] });
  let daemon: Daemon | undefined;
  const stop = async () => {
    await daemon?.stop();
    await removeDir(dir);
    leftovers.delete(leftover);
  };
  try {
    const address = path.join(dir, 'containerd.sock');
    const config = path.join(dir, 'config.toml');
    await writeFile(
      config,
      [
        'version = 2',
        `root = ${tomlString(path.join(dir, 'root'))}`,
        `state = ${tomlString(path.join(dir, 'state'))}`,
        `disabled_plugins = [${DISABLED_CONTAINERD_PLUGINS.map(tomlString).join(', ')}]`,
        '[grpc]',
        `  address = ${tomlString(address)}`,
        '[plugins."io.containerd.metadata.v1.bolt"]',
        // Namespaces do not see each other's blobs: a pull in a fresh namespace really downloads.
        '  content_sharing_policy = "isolated"',
        '',
      ].join('\n'),
    );
    const d = new Daemon(
      'containerd',
      containerdBin,
      ['--config', config, '--address', address, '--root', path.join(dir, 'root'), '--state', path.join(dir, 'state')],
      cleanEnv(['CONTAINERD_']),
    );
    daemon = d;
    leftover.child = d.child;
    await d.waitUntil(`listening on ${address}`, () => socketAccepts(address));
    const defaultNamespace = opts.namespace ?? 'berth-test';
    const ctrEnv = { ...cleanEnv(['CONTAINERD_']), CONTAINERD_SNAPSHOTTER: 'native' };
    return {
      address,
      namespace: defaultNamespace,
      ctr: (args, o = {}) =>
        runAgainst(d, ctrBin, ['--address', address, '--namespace', o.namespace ?? defaultNamespace, ...args], {
          env: ctrEnv,
          timeoutMs: o.timeoutMs ?? CLIENT_TIMEOUT_MS,
          ...(o.input !== undefined ? { input: o.input } : {}),
        }),
      logTail: (lines) => d.logTail(lines),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------
// dockerd + docker

export interface Dockerd {
  /** unix:///…/docker.sock */
  dockerHost: string;
  /** The private client configuration directory (DOCKER_CONFIG). */
  configDir: string;
  /** Environment for the docker CLI: DOCKER_HOST and DOCKER_CONFIG set, other DOCKER_* removed. */
  env: NodeJS.ProcessEnv;
  /** Runs the docker CLI (Debian's, matching the daemon) against this daemon. */
  docker(args: string[], opts?: ClientRunOptions): Promise<RunResult>;
  /** `docker login --password-stdin`; credentials are stored in configDir only. */
  login(host: string, credentials: RegistryCredentials): Promise<void>;
  /** Removes every image (tags and layers) from the daemon. */
  removeAllImages(): Promise<void>;
  /**
   * Makes dockerd trust `caFile` for the registry at `host` ("ip:port", not
   * in 127.0.0.0/8) by writing /etc/docker/certs.d/<host>/ca.crt, the one
   * place rootful dockerd 20.10 reads it from. Removed again by stop().
   */
  trustCA(host: string, caFile: string): Promise<void>;
  logTail(lines?: number): string;
  /** The containerd this dockerd uses. */
  containerd: Containerd;
  stop(): Promise<void>;
}

const DOCKER_CERTS_DIR = '/etc/docker/certs.d';

export interface DockerdOptions {
  /** Extra `--insecure-registry` entries (127.0.0.0/8 is insecure by default). */
  insecureRegistries?: string[];
}

/**
 * Starts a private dockerd (vfs storage, no networking set-up, its own
 * containerd) and waits until its API answers /_ping.
 */
export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  const dockerdBin = await ensureTool('dockerd', 'docker.io');
  // /usr/local/bin/docker may be a newer CLI; Debian's matches the daemon's API.
  const dockerBin = (await whichTool('/usr/bin/docker')) ?? (await ensureTool('docker', 'docker.io'));
  const containerd = await startContainerd({ namespace: 'moby' });
  let dir: string | undefined;
  let execRoot: string | undefined;
  let daemon: Daemon | undefined;
  let leftover: Leftover | undefined;
  // Registry CA directories under /etc/docker/certs.d, and the parents trustCA() created.
  const certDirs: string[] = [];
  const certParents: string[] = [];
  const stop = async () => {
    await daemon?.stop();
    await containerd.stop();
    for (const d of [dir, execRoot, ...certDirs]) if (d) await removeDir(d);
    for (const d of certParents) await rmdir(d).catch(() => undefined);
    if (leftover) leftovers.delete(leftover);
  };
  try {
    dir = await shortTempDir('bdkd-');
    execRoot = await shortTempDir('bdkx-');
    leftover = track({ dirs: [dir, execRoot] });
    const socket = path.join(dir, 'docker.sock');
    const configDir = path.join(dir, 'client');
    await mkdir(configDir);
    const daemonJson = path.join(dir, 'daemon.json');
    await writeFile(daemonJson, JSON.stringify({ 'deprecated-key-path': path.join(dir, 'key.json') }));
    const args = [
      '--config-file', daemonJson,
      '--containerd', containerd.address,
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--data-root', path.join(dir, 'data'),
      '--exec-root', execRoot,
      '--pidfile', path.join(dir, 'docker.pid'),
      '-H', `unix://${socket}`,
      ...(opts.insecureRegistries ?? []).flatMap((r) => ['--insecure-registry', r]),
    ];
    daemon = new Daemon('dockerd', dockerdBin, args, cleanEnv(['DOCKER_']));
    leftover.child = daemon.child;
    await daemon.waitUntil(`answering /_ping on ${socket}`, async () => (await httpStatusOverSocket(socket, '/_ping')) === 200);
    const d = daemon;
    const env: NodeJS.ProcessEnv = { ...cleanEnv(['DOCKER_']), DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: configDir };
    const docker = (args: string[], o: ClientRunOptions = {}) =>
      runAgainst(d, dockerBin, args, {
        env,
        timeoutMs: o.timeoutMs ?? CLIENT_TIMEOUT_MS,
        ...(o.input !== undefined ? { input: o.input } : {}),
      });
    return {
      dockerHost: `unix://${socket}`,
      configDir,
      env,
      docker,
      async login(host, credentials) {
        await docker(['login', '--username', credentials.username, '--password-stdin', host], { input: `${credentials.password}\n` });
      },
      async removeAllImages() {
        const ids = (await docker(['images', '--all', '--quiet', '--no-trunc'])).stdout.split('\n').filter(Boolean);
        if (ids.length > 0) await docker(['rmi', '--force', ...new Set(ids)]);
      },
      async trustCA(host, caFile) {
        if (!/^[\w.-]+:\d+$/.test(host)) throw new Error(`trustCA: expected "host:port", got ${JSON.stringify(host)}`);
        const hostDir = path.join(DOCKER_CERTS_DIR, host);
        // The first directory mkdir created: its parents up to it are ours to remove when empty.
        const created = await mkdir(hostDir, { recursive: true });
        if (created === undefined) throw new Error(`${hostDir} already exists: another test is using this registry address`);
        certDirs.push(hostDir);
        leftover!.dirs.push(hostDir);
        for (let p = path.dirname(hostDir); created !== hostDir && p.length >= created.length; p = path.dirname(p)) {
          certParents.push(p);
          (leftover!.emptyDirs ??= []).push(p);
        }
        await copyFile(caFile, path.join(hostDir, 'ca.crt'));
      },
      logTail: (lines) => d.logTail(lines),
      containerd,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---------------------------------------------------------------------------
// podman (no daemon: every command opens the storage itself)

export interface Podman {
  /** Environment podman runs with: private containers.conf, storage.conf, registries.conf, HOME, XDG dirs, auth file. */
  env: NodeJS.ProcessEnv;
  /** REGISTRY_AUTH_FILE: where `podman login` stores credentials. */
  authFile: string;
  /** Runs `podman --root … --runroot … <args>`. */
  podman(args: string[], opts?: ClientRunOptions): Promise<RunResult>;
  /** `podman login --password-stdin`; credentials are stored in authFile only. */
  login(host: string, credentials: RegistryCredentials): Promise<void>;
  /** Removes every image from this podman's storage. */
  removeAllImages(): Promise<void>;
  close(): Promise<void>;
}

export interface PodmanOptions {
  /** Registries ("host:port") to reach over plain HTTP, e.g. Berth's `host`. */
  insecureRegistries?: string[];
}

/** A podman with its own storage (vfs), run root, configuration and home, nothing shared with the system's. */
export async function createPodman(opts: PodmanOptions = {}): Promise<Podman> {
  const podmanBin = await ensureTool('podman');
  const dir = await tempDir('berth-podman-');
  // containers/storage wants the run root short (it holds lock files and sockets).
  const runRoot = await shortTempDir('bpr-');
  const leftover = track({ dirs: [dir, runRoot] });
  const close = async () => {
    await removeDir(dir);
    await removeDir(runRoot);
    leftovers.delete(leftover);
  };
  try {
    const p = (name: string) => path.join(dir, name);
    for (const d of ['home', 'xdg-runtime', 'xdg-config', 'xdg-data', 'root', 'tmp', 'networks']) {
      await mkdir(p(d), { mode: 0o700 });
    }
    await writeFile(
      p('registries.conf'),
      [
        'unqualified-search-registries = []',
        ...(opts.insecureRegistries ?? []).flatMap((r) => ['', '[[registry]]', `location = ${tomlString(r)}`, 'insecure = true']),
        '',
      ].join('\n'),
    );
    await writeFile(
      p('storage.conf'),
      ['[storage]', 'driver = "vfs"', `runroot = ${tomlString(runRoot)}`, `graphroot = ${tomlString(p('root'))}`, ''].join('\n'),
    );
    await writeFile(
      p('containers.conf'),
      [
        '[engine]',
        'events_logger = "file"',
        `events_logfile_path = ${tomlString(p('events.log'))}`,
        `tmp_dir = ${tomlString(p('tmp'))}`,
        `image_copy_tmp_dir = ${tomlString(p('tmp'))}`,
        'cgroup_manager = "cgroupfs"',
        '[network]',
        'network_backend = "cni"',
        `network_config_dir = ${tomlString(p('networks'))}`,
        '',
      ].join('\n'),
    );
    // podman refuses to run when REGISTRY_AUTH_FILE names a missing file.
    const authFile = p('auth.json');
    await writeFile(authFile, JSON.stringify({ auths: {} }), { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      ...cleanEnv(['CONTAINERS_', 'REGISTRY_AUTH_FILE', 'XDG_', 'DOCKER_']),
      HOME: p('home'),
      XDG_RUNTIME_DIR: p('xdg-runtime'),
      XDG_CONFIG_HOME: p('xdg-config'),
      XDG_DATA_HOME: p('xdg-data'),
      TMPDIR: p('tmp'),
      CONTAINERS_CONF: p('containers.conf'),
      CONTAINERS_STORAGE_CONF: p('storage.conf'),
      CONTAINERS_REGISTRIES_CONF: p('registries.conf'),
      REGISTRY_AUTH_FILE: authFile,
    };
    const globalArgs = [
      '--root', p('root'),
      '--runroot', runRoot,
      '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--tmpdir', p('tmp'),
    ];
    const podman = (args: string[], o: ClientRunOptions = {}) =>
      run(podmanBin, [...globalArgs, ...args], {
        env,
        timeoutMs: o.timeoutMs ?? CLIENT_TIMEOUT_MS,
        ...(o.input !== undefined ? { input: o.input } : {}),
      });
    return {
      env,
      authFile,
      podman,
      async login(host, credentials) {
        await podman(['login', '--username', credentials.username, '--password-stdin', host], { input: `${credentials.password}\n` });
      },
      async removeAllImages() {
        await podman(['rmi', '--all', '--force']);
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
