/**
 * The user's literal path: `bin/berth serve` exactly as the README says (no
 * configuration, no REGISTRY_* variable, a fresh directory, port 5000), the
 * README's own first push and pull run twice, and distribution's stock
 * config.yml unchanged. Every other test starts Berth on an explicit
 * 127.0.0.1 address, which is how the default `:5000` went unnoticed.
 *
 * Both servers listen on port 5000, so this file runs them one after the
 * other; no other test may use that port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../support/berth.js';
import { stockConfig } from '../support/distribution.js';
import { startDockerd } from '../support/clients.js';
import { buildImage, pullImage, pushImage } from '../support/images.js';
import { ensureTool, run } from '../support/tools.js';

const PORT = 5000;
const BIN = path.join(REPO_ROOT, 'bin/berth');

/** The environment a user's shell has: ours, without any REGISTRY_* variable. */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
}

async function portIsFree(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: PORT });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function ipv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(0, '::1', () => srv.close(() => resolve(true)));
  });
}

interface Started {
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** Runs bin/berth with `args` in `cwd`, as a user would type it, and waits until :5000 answers. */
async function startAsUser(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Started> {
  assert.ok(await portIsFree('127.0.0.1'), `port ${PORT} is taken by another process: this test needs it, as the README's first command does`);
  const child = spawn(BIN, args, { cwd, env: { ...userEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const deadline = Date.now() + 300_000; // the first run may install and build
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bin/berth ${args.join(' ')} exited with ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${PORT}/v2/`, { signal: AbortSignal.timeout(2000) });
      // 200, or the challenge of a registry with accounts.
      if (r.status === 200 || r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`bin/berth ${args.join(' ')} did not answer on :${PORT}:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    output: () => out,
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      process.off('exit', reap);
      return code;
    },
  };
}

/** The README's sh block that holds `needle`. */
async function readmeBlock(needle: string): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(needle));
  assert.ok(block, `README.md has a sh block with ${needle}`);
  return block;
}

/** The README's shell block that builds, pushes and pulls the first image. */
async function readmeFirstPush(): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes('umoci init') && b.includes('skopeo copy'));
  assert.ok(block, 'README.md has a sh block with the first push and pull');
  return block;
}

describe('the README, followed literally', () => {
  const dirs: string[] = [];
  const fresh = async (name: string) => {
    const dir = await mkdtemp(path.join(tmpdir(), `berth-${name}-`));
    dirs.push(dir);
    return dir;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('`bin/berth serve` in a fresh directory listens on :5000 and takes the README first push and pull, twice', async () => {
    await Promise.all([ensureTool('skopeo'), ensureTool('umoci'), ensureTool('curl')]);
    const home = await fresh('home');
    const berth = await startAsUser(home, ['serve']);
    try {
      // Every interface, IPv4 and IPv6, as distribution's ":5000" does.
      if (await ipv6Loopback()) {
        const v6 = await fetch(`http://[::1]:${PORT}/v2/`);
        assert.equal(v6.status, 200, 'the default address listens on IPv6 too');
      }
      const script = await readmeFirstPush();
      for (const round of [1, 2]) {
        // From a different directory each time: the block must not depend on where it runs.
        const cwd = await fresh(`readme-${round}`);
        const r = await run('bash', ['-euo', 'pipefail', '-c', script], { cwd, timeoutMs: 180_000 });
        assert.match(r.stdout, /"repositories":\["hello"\]/, `round ${round}: the catalog lists hello`);
        assert.match(r.stdout, /"Digest":\s*"sha256:[0-9a-f]{64}"/, `round ${round}: skopeo inspect shows the image`);
      }
      // With no configuration the Hub's reading side is there too, everything public (accounts off): the JSON
      // API finds and describes what was pushed, and the web UI's shell is served in its browsing mode.
      const found = (await (await fetch(`http://127.0.0.1:${PORT}/berth/v1/search?q=hello`)).json()) as { items: { name: string }[] };
      assert.deepEqual(found.items.map((i) => i.name), ['hello']);
      const tags = (await (await fetch(`http://127.0.0.1:${PORT}/berth/v1/repositories/hello/-/tags`)).json()) as { items: { name: string; full_size: number }[] };
      assert.deepEqual(tags.items.map((t) => t.name), ['latest']);
      assert.ok(tags.items[0]!.full_size > 0, 'the tag has a size');
      const shell = await fetch(`http://127.0.0.1:${PORT}/r/hello`, { headers: { accept: 'text/html' } });
      assert.equal(shell.status, 200);
      assert.match(await shell.text(), /<meta name="berth-accounts" content="open">/);
      // The data went where the README says: ./data of the directory it was started in.
      assert.ok(existsSync(path.join(home, 'data', 'berth.db')), 'the SQLite database is under ./data');
      // The start-up line comes once every serving thread is up (the main thread serves before).
      const startLine = () => berth.output().split('\n').find((l) => l.includes('berth listening'));
      for (let waited = 0; !startLine() && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      const start = startLine();
      assert.ok(start, `a start-up line:\n${berth.output()}`);
      assert.match(start, /":5000"/);
    } finally {
      assert.equal(await berth.stop(), 0, `a clean exit on SIGTERM:\n${berth.output()}`);
    }
  });

  it("starts with distribution's stock config.yml unchanged and serves skopeo", async () => {
    const root = '/var/lib/registry';
    const existed = existsSync(root);
    const work = await fresh('stock');
    await writeFile(path.join(work, 'config.yml'), stockConfig());
    const berth = await startAsUser(work, ['serve', 'config.yml']);
    try {
      const base = await fetch(`http://127.0.0.1:${PORT}/v2/`);
      assert.equal(base.headers.get('x-content-type-options'), 'nosniff', 'the configured headers are sent');
      const repo = `stock-${process.pid}`;
      const image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'stock-config', layers: 2 });
      const pushed = await pushImage(image, `127.0.0.1:${PORT}/${repo}:v1`);
      assert.equal(pushed, image.manifestDigest);
      const pulled = await pullImage(`127.0.0.1:${PORT}/${repo}:v1`, path.join(work, 'pulled'), 'v1');
      assert.equal(pulled, image.manifestDigest);
      assert.ok(existsSync(path.join(root, 'berth.db')), `the metadata database is under the configured ${root}`);
      const health = await fetch(`http://127.0.0.1:${PORT}/v2/`);
      assert.equal(health.status, 200, 'the storage health check passes');
    } finally {
      assert.equal(await berth.stop(), 0, `a clean exit on SIGTERM:\n${berth.output()}`);
      if (!existed) await rm(root, { recursive: true, force: true });
    }
  });
  it("the README's accounts quick start: an administrator from the command line, REGISTRY_AUTH=accounts bin/berth serve, docker login and push", async () => {
    const block = (await readmeBlock('REGISTRY_AUTH=accounts bin/berth user add')).split('\n').filter((l) => l.trim() !== '');
    const [addAdmin, serve, login, push] = block;
    assert.match(addAdmin!, /^printf '%s\\n' "\$ADMIN_PASSWORD" \| REGISTRY_AUTH=accounts bin\/berth user add chief --admin$/);
    assert.match(serve!, /^REGISTRY_AUTH=accounts bin\/berth serve$/);
    assert.match(login!, /^docker login localhost:5000/);
    assert.match(push!, /^docker push localhost:5000\/library\/alpine:3\.20$/);
    const home = await fresh('accounts');
    const password = 'correct horse battery staple';
    // The README's first line as written, with bin/berth where this checkout keeps it.
    await run('bash', ['-euo', 'pipefail', '-c', addAdmin!.replace('bin/berth', BIN)], { cwd: home, env: { ...userEnv(), ADMIN_PASSWORD: password } });
    const berth = await startAsUser(home, ['serve'], { REGISTRY_AUTH: 'accounts' });
    const dockerd = await startDockerd();
    try {
      const challenge = await fetch(`http://127.0.0.1:${PORT}/v2/`);
      assert.equal(challenge.status, 401);
      assert.match(challenge.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:5000\/token",service="/);
      // An image in the daemon to push, as `docker pull alpine:3.20` would leave one.
      const image = await buildImage(path.join(home, 'layout'), { tag: 'v1', seed: 'accounts-readme', layers: 1 });
      const archive = path.join(home, 'alpine.tar');
      await run(await ensureTool('skopeo'), ['copy', '--quiet', image.ref, `docker-archive:${archive}:localhost:5000/library/alpine:3.20`]);
      await dockerd.docker(['load', '-i', archive]);
      await dockerd.login('localhost:5000', { username: 'chief', password });
      await dockerd.docker(['push', 'localhost:5000/library/alpine:3.20']);
      // The push arrived, and is private to the administrator: anonymous callers are challenged.
      const tags = await fetch(`http://127.0.0.1:${PORT}/v2/library/alpine/tags/list`, { headers: { Authorization: `Basic ${Buffer.from(`chief:${password}`).toString('base64')}` } });
      assert.deepEqual(await tags.json(), { name: 'library/alpine', tags: ['3.20'] });
      assert.equal((await fetch(`http://127.0.0.1:${PORT}/v2/library/alpine/tags/list`)).status, 401);
    } finally {
      await dockerd.stop();
      assert.equal(await berth.stop(), 0, `a clean exit on SIGTERM:\n${berth.output()}`);
    }
  });
});
