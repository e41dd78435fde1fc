/**
 * `docker search` against Berth with accounts, started as a user starts it
 * (config.yml with `auth: accounts`, the administrator from `berth user add
 * --admin`, `berth serve`), with the real dockerd and podman:
 * - logged out, dockerd's /v1/search carries no credentials: public
 *   repositories only, in the table dockerd prints, ranked by stars;
 *   `--limit`, `--filter stars=N` and `--filter is-official=true` work;
 * - after `docker login` (Berth keeps a refresh token), dockerd searches with
 *   a Bearer token of scope registry:catalog:search: alice sees her private
 *   repository and not bob's, and bob the other way round;
 * - podman searches /v1/search without credentials: public only; with
 *   anonymous pulls off that search is challenged, and podman falls back
 *   to the catalog with its login;
 * - a repository webhook created through the domain receives a push's
 *   Hub-style payload, and the push is recorded as activity.
 * The HTTP details (empty Basic pairs, challenges, htpasswd) are in
 * test/e2e/search-http.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { Principal } from '../../src/access/types.js';
import { CLI, createDiscovery, type Discovery } from '../../src/hub/index.js';
import { FilesystemBlobStore } from '../../src/storage/index.js';
import { startAccountsBerth, type AccountsBerth } from '../support/accounts.js';
import { createPodman, startDockerd, type Dockerd, type Podman } from '../support/clients.js';
import { buildImage, type BuiltImage } from '../support/images.js';
import { ensureTool, run } from '../support/tools.js';

const PASSWORDS = { alice: 'alice-password-1', bob: 'bob-password-1' };

describe('docker search and podman search against Berth with accounts', { timeout: 600_000 }, () => {
  let b: AccountsBerth;
  let work: string;
  let image: BuiltImage;
  let skopeo: string;
  let discovery: Discovery;
  let dockerd: Dockerd | undefined;
  let podman: Podman | undefined;
  const principals = new Map<string, Principal>();

  const push = async (creds: string, dest: string) => {
    await run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, image.ref, `docker://${b.host}/${dest}`], { timeoutMs: 120_000 });
  };
  const who = async (name: string): Promise<Principal> => {
    const known = principals.get(name);
    if (known) return known;
    const a = await b.hub.accounts.get(name);
    assert.ok(a, name);
    const p: Principal = { kind: 'user', id: a.id, name, admin: a.admin };
    principals.set(name, p);
    return p;
  };

  before(async () => {
    skopeo = await ensureTool('skopeo');
    b = await startAccountsBerth();
    for (const [name, password] of Object.entries(PASSWORDS)) await b.addUser(name, password);
    work = await mkdtemp(path.join(tmpdir(), 'berth-search-'));
    image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'search', layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    const alice = `alice:${PASSWORDS.alice}`;
    await push(alice, 'alice/webserver:v1');
    await push(alice, 'alice/webtools:v1');
    await push(alice, 'alice/websecret:v1');
    await push(`bob:${PASSWORDS.bob}`, 'bob/webhidden:v1');
    // One-component names are library/NAME with accounts on: official from the first push.
    await push(`${b.admin.user}:${b.admin.password}`, 'webbase:v1');
    for (const r of ['alice/webserver', 'alice/webtools', 'library/webbase']) await b.hub.repositories.setVisibility(r, 'public', CLI);
    // The test's own discovery on the server's database, as the JSON API will set these.
    discovery = createDiscovery(b.store, { mode: 'accounts', blobs: new FilesystemBlobStore({ rootDirectory: path.join(b.dir, 'data') }), log: pino({ level: 'silent' }) });
    await discovery.pages.setDescription(await who('alice'), 'alice/webserver', 'A small web server', CLI);
    for (const u of ['alice', 'bob', b.admin.user]) await discovery.stars.setStar(await who(u), 'alice/webserver', true, CLI);
    await discovery.stars.setStar(await who('alice'), 'library/webbase', true, CLI);
  });
  after(async () => {
    await dockerd?.stop();
    await podman?.close();
    await discovery?.close();
    await b?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const names = async (...args: string[]) =>
    (await dockerd!.docker(['search', '--format', '{{.Name}}', ...args])).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);

  it('docker search, logged out: the public repositories in the table dockerd prints, ranked by stars; --limit and --filter', async () => {
    dockerd = await startDockerd();
    const table = (await dockerd.docker(['search', '--no-trunc', `${b.host}/web`])).stdout.trim().split('\n');
    assert.match(table[0]!, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\s+AUTOMATED$/);
    assert.deepEqual(
      table.slice(1).map((l) => l.trim().split(/\s+/)),
      [
        ['alice/webserver', 'A', 'small', 'web', 'server', '3'],
        ['webbase', '1', '[OK]'],
        ['alice/webtools', '0'],
      ],
    );
    assert.deepEqual(await names('--limit', '2', `${b.host}/web`), ['alice/webserver', 'webbase']);
    assert.deepEqual(await names('--filter', 'stars=2', `${b.host}/web`), ['alice/webserver']);
    assert.deepEqual(await names('--filter', 'is-official=true', `${b.host}/web`), ['webbase']);
    // The term is matched as words and names: "webserver" finds that one repository.
    assert.deepEqual(await names(`${b.host}/webserver`), ['alice/webserver']);
    assert.deepEqual(await names(`${b.host}/nothing-like-it`), []);
  });

  it('docker search after docker login: a registry:catalog:search token; alice sees her private repository, not bob’s, and bob the other way round', async () => {
    await dockerd!.login(b.host, { username: 'alice', password: PASSWORDS.alice });
    assert.deepEqual((await names(`${b.host}/web`)).sort(), ['alice/websecret', 'alice/webserver', 'alice/webtools', 'webbase']);
    await dockerd!.docker(['logout', b.host]);
    await dockerd!.login(b.host, { username: 'bob', password: PASSWORDS.bob });
    assert.deepEqual((await names(`${b.host}/web`)).sort(), ['alice/webserver', 'alice/webtools', 'bob/webhidden', 'webbase']);
    await dockerd!.docker(['logout', b.host]);
    // dockerd got those results with Bearer tokens its refresh tokens bought (the access log names the holder).
    const searches = b.process
      .output()
      .split('\n')
      .filter((l) => l.includes('"route":"search"'))
      .map((l) => JSON.parse(l) as { user?: string; status: number });
    assert.ok(searches.some((s) => s.user === 'alice' && s.status === 200));
    assert.ok(searches.some((s) => s.user === 'bob' && s.status === 200));
  });

  it('podman search: /v1/search without credentials, so public repositories only, logged in or not', async () => {
    podman = await createPodman({ insecureRegistries: [b.host] });
    const search = async (...args: string[]) =>
      (await podman!.podman(['search', '--format', '{{.Name}}', ...args])).stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
    const expected = [`${b.host}/alice/webserver`, `${b.host}/webbase`, `${b.host}/alice/webtools`];
    assert.deepEqual(await search(`${b.host}/web`), expected);
    assert.deepEqual(await search('--limit', '1', `${b.host}/web`), expected.slice(0, 1));
    assert.deepEqual(await search('--filter', 'stars=2', `${b.host}/web`), expected.slice(0, 1));
    await podman.login(b.host, { username: 'alice', password: PASSWORDS.alice });
    assert.deepEqual(await search(`${b.host}/web`), expected);
    await podman.podman(['logout', b.host]);
  });

  it('a repository webhook receives the Hub-style payload of a push, and the push is activity', async () => {
    const received: { body: Record<string, unknown>; type: string | undefined }[] = [];
    const hook: Server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c) => (body += String(c)));
      req.on('end', () => {
        received.push({ body: JSON.parse(body) as Record<string, unknown>, type: req.headers['content-type'] });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
      const alice = await who('alice');
      await discovery.webhooks.create(alice, 'alice/webserver', { name: 'ci', url }, CLI);
      await push(`alice:${PASSWORDS.alice}`, 'alice/webserver:v2');
      const deadline = Date.now() + 30_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      assert.equal(received.length, 1, 'one delivery');
      const { body, type } = received[0]!;
      assert.match(type ?? '', /^application\/json/);
      const pushData = body.push_data as { tag: string; pusher: string; images: string[]; pushed_at: number };
      assert.equal(pushData.tag, 'v2');
      assert.equal(pushData.pusher, 'alice');
      assert.deepEqual(pushData.images, [image.manifestDigest]);
      assert.ok(Math.abs(pushData.pushed_at - Date.now() / 1000) < 120);
      assert.deepEqual(body.repository, {
        repo_name: 'alice/webserver',
        namespace: 'alice',
        name: 'webserver',
        owner: 'alice',
        is_official: false,
        status: 'Active',
        repo_url: null,
      });
      assert.equal((body.webhook as { name: string }).name, 'ci');
      const activity = await discovery.activity.read(alice, { repository: 'alice/webserver' });
      const pushes = activity.entries.filter((e) => e.action === 'push' || e.action === 'tag').map((e) => [e.action, e.tag, e.actor]);
      assert.deepEqual(pushes[0], ['tag', 'v2', 'alice'], 'the same manifest given a new tag');
      assert.ok(pushes.some(([action, tag, actor]) => action === 'push' && tag === 'v1' && actor === 'alice'));
    } finally {
      await new Promise((resolve) => hook.close(resolve));
    }
  });
});

describe('podman search against Berth with anonymous pulls off', { timeout: 300_000 }, () => {
  let b: AccountsBerth;
  let work: string;
  let podman: Podman | undefined;

  before(async () => {
    const skopeo = await ensureTool('skopeo');
    b = await startAccountsBerth('', { anonymouspull: 'false' });
    for (const [name, password] of Object.entries(PASSWORDS)) await b.addUser(name, password);
    work = await mkdtemp(path.join(tmpdir(), 'berth-search-off-'));
    const image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'search-off', layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    const push = (creds: string, dest: string) =>
      run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, image.ref, `docker://${b.host}/${dest}`], { timeoutMs: 120_000 });
    await push(`alice:${PASSWORDS.alice}`, 'alice/webapp:v1');
    await push(`bob:${PASSWORDS.bob}`, 'bob/webpub:v1');
    await push(`bob:${PASSWORDS.bob}`, 'bob/webprivate:v1');
    await b.hub.repositories.setVisibility('bob/webpub', 'public', CLI);
  });
  after(async () => {
    await podman?.close();
    await b?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('anonymous /v1/search is challenged, so podman falls back to the catalog with its login: what alice may read', async () => {
    podman = await createPodman({ insecureRegistries: [b.host] });
    await podman.login(b.host, { username: 'alice', password: PASSWORDS.alice });
    const found = (await podman.podman(['search', '--format', '{{.Name}}', `${b.host}/web`])).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .sort();
    assert.deepEqual(found, [`${b.host}/alice/webapp`, `${b.host}/bob/webpub`]);
  });
});
