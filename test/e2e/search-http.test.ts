/**
 * /v1/_ping, /v1/search and pull counting over HTTP, against the in-process
 * server, in each authentication mode (the real clients are in
 * test/e2e/search.test.ts):
 * - accounts: the ping answers anyone; anonymous (and dockerd's empty Basic
 *   pair over HTTPS) searches public repositories; Basic credentials and a
 *   Bearer token of scope registry:catalog:search search what their holder
 *   may read; a token without that scope is challenged for it; with
 *   anonymous pulls off, anonymous callers are challenged (podman then
 *   falls back to the catalog with its credentials);
 * - htpasswd: Basic is required, as for /v2/;
 * - no auth: every repository;
 * - bad parameters are the spec's 400, other methods 405;
 * - manifest GETs answered 200 are counted, HEADs, 304s and errors are not;
 * - with notification endpoints, events reach them and discovery both.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { CLI } from '../../src/hub/index.js';
import { basic, pushSmallImage } from '../support/accounts.js';
import { parseChallenge } from '../support/bearer.js';
import { startBerth, type TestBerth } from '../support/berth.js';

interface SearchAnswer {
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  query: string;
  results: { name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[];
}

const withAuth =
  (authorization: string): typeof fetch =>
  (input, init = {}) =>
    fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: authorization } });

async function search(b: TestBerth, query: string, authorization?: string): Promise<{ status: number; body: SearchAnswer; headers: Headers }> {
  const res = await fetch(`${b.url}/v1/search?${query}`, { headers: authorization ? { Authorization: authorization } : {} });
  return { status: res.status, body: (await res.json()) as SearchAnswer, headers: res.headers };
}
const names = (a: SearchAnswer) => a.results.map((r) => r.name).sort();

describe('/v1/search with accounts', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_AUTH: 'accounts' });
    const hub = b.server.hub!;
    for (const name of ['alice', 'bob']) await hub.accounts.create({ name, password: `${name}-password-1` }, CLI);
    await pushSmallImage(withAuth(basic('alice', 'alice-password-1')), b.url, 'alice/web-private', 'v1');
    await pushSmallImage(withAuth(basic('alice', 'alice-password-1')), b.url, 'alice/web-public', 'v1');
    await pushSmallImage(withAuth(basic('bob', 'bob-password-1')), b.url, 'bob/web-bob', 'v1');
    await hub.repositories.setVisibility('alice/web-public', 'public', CLI);
  });
  after(() => b?.close());

  it('answers the ping to anyone, saying it is a standalone registry', async () => {
    const res = await fetch(`${b.url}/v1/_ping`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-docker-registry-standalone'), 'true');
    assert.deepEqual(await res.json(), { standalone: true });
  });

  it("anonymous callers and dockerd's empty Basic pair find public repositories, in Docker Hub's shape", async () => {
    const anonymous = await search(b, 'q=web');
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.body, {
      num_results: 1,
      num_pages: 1,
      page: 1,
      page_size: 25,
      query: 'web',
      results: [{ name: 'alice/web-public', description: '', star_count: 0, is_official: false, is_automated: false }],
    });
    const empty = await search(b, 'q=web', `Basic ${Buffer.from(':').toString('base64')}`);
    assert.equal(empty.status, 200);
    assert.deepEqual(names(empty.body), ['alice/web-public']);
  });

  it('Basic credentials and a registry:catalog:search token search what their holder may read', async () => {
    assert.deepEqual(names((await search(b, 'q=web', basic('alice', 'alice-password-1'))).body), ['alice/web-private', 'alice/web-public']);
    assert.deepEqual(names((await search(b, 'q=web', basic('bob', 'bob-password-1'))).body), ['alice/web-public', 'bob/web-bob']);
    const wrong = await search(b, 'q=web', basic('alice', 'not-her-password'));
    assert.equal(wrong.status, 401);

    const token = async (scope: string) => {
      const res = await fetch(`${b.url}/token?service=${encodeURIComponent(b.server.app.config.auth.accounts!.service)}&scope=${encodeURIComponent(scope)}`, {
        headers: { Authorization: basic('alice', 'alice-password-1') },
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { token: string }).token;
    };
    const searching = await token('registry:catalog:search');
    const found = await search(b, 'q=web', `Bearer ${searching}`);
    assert.equal(found.status, 200);
    assert.deepEqual(names(found.body), ['alice/web-private', 'alice/web-public']);
    // A token for something else is challenged for the search scope, as dockerd's token client expects.
    const other = await search(b, 'q=web', `Bearer ${await token('repository:alice/web-private:pull')}`);
    assert.equal(other.status, 401);
    const challenge = parseChallenge(other.headers.get('www-authenticate'));
    assert.equal(challenge?.scheme, 'bearer');
    assert.equal(challenge?.params.scope, 'registry:catalog:search');
    assert.equal(challenge?.params.error, 'insufficient_scope');
  });

  it('pages with n and page; refuses bad numbers with the spec error and other methods with 405', async () => {
    const auth = basic('alice', 'alice-password-1');
    const first = await search(b, 'q=web&n=1', auth);
    assert.deepEqual([first.body.num_results, first.body.num_pages, first.body.page, first.body.page_size, first.body.results.length], [2, 2, 1, 1, 1]);
    const second = await search(b, 'q=web&n=1&page=2', auth);
    assert.equal(second.body.page, 2);
    assert.notEqual(second.body.results[0]!.name, first.body.results[0]!.name);
    for (const bad of ['n=0', 'n=abc', 'n=-1', 'page=0', 'page=10001', 'n=1.5']) {
      const res = await fetch(`${b.url}/v1/search?q=web&${bad}`);
      assert.equal(res.status, 400, bad);
      const body = (await res.json()) as { errors: { code: string }[] };
      assert.equal(body.errors[0]!.code, 'PAGINATION_NUMBER_INVALID', bad);
    }
    const post = await fetch(`${b.url}/v1/search?q=web`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });
});

describe('/v1/search with accounts and anonymous pulls off', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_AUTH_ACCOUNTS_ANONYMOUSPULL: 'false' });
    await b.server.hub!.accounts.create({ name: 'alice', password: 'alice-password-1' }, CLI);
    await pushSmallImage(withAuth(basic('alice', 'alice-password-1')), b.url, 'alice/web', 'v1');
    await b.server.hub!.repositories.setVisibility('alice/web', 'public', CLI);
  });
  after(() => b?.close());

  it('challenges anonymous callers for the search scope (podman falls back to the catalog then); credentials still search', async () => {
    const res = await fetch(`${b.url}/v1/search?q=web`);
    assert.equal(res.status, 401);
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(challenge?.scheme, 'bearer');
    assert.equal(challenge?.params.scope, 'registry:catalog:search');
    assert.deepEqual(names((await search(b, 'q=web', basic('alice', 'alice-password-1'))).body), ['alice/web']);
    // The ping stays open: it tells nothing.
    assert.equal((await fetch(`${b.url}/v1/_ping`)).status, 200);
  });
});

describe('/v1/search with htpasswd and without auth; pull counting', () => {
  let work: string;
  let open: TestBerth;
  let htpasswd: TestBerth;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-search-http-'));
    const file = path.join(work, 'htpasswd');
    await writeFile(file, `alice:${bcrypt.hashSync('alice-pw', 4)}\n`);
    htpasswd = await startBerth({ REGISTRY_AUTH_HTPASSWD_PATH: file, REGISTRY_AUTH_HTPASSWD_REALM: 'test' });
    open = await startBerth();
    await pushSmallImage(withAuth(basic('alice', 'alice-pw')), htpasswd.url, 'team/web', 'v1');
    await pushSmallImage(fetch, open.url, 'team/web', 'v1');
    await pushSmallImage(fetch, open.url, 'other/web', 'v1');
  });
  after(async () => {
    await htpasswd?.close();
    await open?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('htpasswd: Basic credentials are required, as for /v2/; then every repository', async () => {
    const anonymous = await fetch(`${htpasswd.url}/v1/search?q=web`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="test"/);
    assert.equal((await search(htpasswd, 'q=web', basic('alice', 'wrong'))).status, 401);
    assert.deepEqual(names((await search(htpasswd, 'q=web', basic('alice', 'alice-pw'))).body), ['team/web']);
    assert.equal((await fetch(`${htpasswd.url}/v1/_ping`)).status, 200);
  });

  it('no auth: every repository, to anyone', async () => {
    assert.deepEqual(names((await search(open, 'q=web')).body), ['other/web', 'team/web']);
  });

  it("accounts off: the Hub's reading API answers as the registry decides (no auth: anyone; htpasswd: Basic), and changes stay off", async () => {
    const get = async (b: TestBerth, p: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${b.url}/berth/v1/${p}`, { headers });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const items = (body: Record<string, unknown>) => (body.items as { name: string }[]).map((i) => i.name);
    // No auth: search (typos too), the repository's page, its tags, a tag's image, activity, the listing.
    assert.deepEqual(items((await get(open, 'search?q=web')).body).sort(), ['other/web', 'team/web']);
    assert.deepEqual(items((await get(open, 'search?q=tean')).body), ['team/web']);
    const page = await get(open, 'repositories/team/web');
    assert.equal(page.status, 200);
    assert.equal(page.body.full_name, 'team/web');
    assert.equal(page.body.is_private, false);
    assert.equal(page.body.permission, 'read');
    assert.equal(page.body.tags, 1);
    assert.deepEqual(items((await get(open, 'repositories/team/web/-/tags')).body), ['v1']);
    const image = await get(open, 'repositories/team/web/-/manifests/v1');
    assert.equal(image.status, 200);
    assert.match(String(image.body.digest), /^sha256:[0-9a-f]{64}$/);
    const activity = (await get(open, 'repositories/team/web/-/activity')).body.items as { action: string; tag: string }[];
    assert.deepEqual(activity.map((e) => `${e.action} ${e.tag}`), ['push v1']);
    assert.deepEqual(items((await get(open, 'repositories')).body), ['other/web', 'team/web']);
    // A name is only itself without accounts (with them, `web` would be `library/web`).
    const missing = await get(open, 'repositories/web');
    assert.equal(missing.status, 404);
    assert.equal((missing.body.errors as { code: string }[])[0]!.code, 'NAME_UNKNOWN');
    // Nobody to star as, nothing to change through the Hub's API.
    for (const [method, p] of [['PUT', 'repositories/team/web/-/star'], ['PUT', 'repositories/team/web/-/description'], ['POST', 'accounts'], ['GET', 'sessions/current']] as const) {
      const r = await fetch(`${open.url}/berth/v1/${p}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
      assert.ok(r.status === 404 || r.status === 405, `${method} ${p}: ${r.status}`);
      await r.arrayBuffer();
    }
    // The Hub's other paths under a repository are no endpoint here (not a malformed repository name).
    const webhooks = await get(open, 'repositories/team/web/-/webhooks');
    assert.equal(webhooks.status, 404);
    assert.equal((webhooks.body.errors as { code: string }[])[0]!.code, 'UNSUPPORTED');
    // The OpenAPI document lists the reading operations beside the registry's own.
    const doc = (await get(open, 'openapi.json')).body as { paths: Record<string, unknown> };
    for (const p of ['/berth/v1/search', '/berth/v1/repositories/{name}/-/tags', '/berth/v1/gc']) assert.ok(doc.paths[p], p);
    // htpasswd: as /v2/, nothing without valid credentials; with them, every repository.
    const anonymous = await fetch(`${htpasswd.url}/berth/v1/search?q=web`);
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
    assert.equal((await get(htpasswd, 'repositories/team/web', { authorization: basic('alice', 'wrong') })).status, 401);
    const alice = { authorization: basic('alice', 'alice-pw') };
    assert.deepEqual(items((await get(htpasswd, 'search?q=web', alice)).body), ['team/web']);
    assert.equal((await get(htpasswd, 'repositories/team/web', alice)).body.full_name, 'team/web');
  });

  it('counts manifest GETs answered 200, by tag or digest; not HEADs, 304s or errors', async () => {
    const pulls = open.server.app.discovery.pulls;
    await pulls.flush();
    const manifest = `${open.url}/v2/team/web/manifests/v1`;
    const accept = { Accept: 'application/vnd.oci.image.manifest.v1+json' };
    const got = await fetch(manifest, { headers: accept });
    assert.equal(got.status, 200);
    const digest = got.headers.get('docker-content-digest')!;
    await got.arrayBuffer();
    assert.equal(pulls.unflushed, 1);
    await (await fetch(`${open.url}/v2/team/web/manifests/${digest}`, { headers: accept })).arrayBuffer();
    assert.equal(pulls.unflushed, 2);
    assert.equal((await fetch(manifest, { method: 'HEAD', headers: accept })).status, 200);
    assert.equal((await fetch(manifest, { headers: { ...accept, 'If-None-Match': `"${digest}"` } })).status, 304);
    const missing = await fetch(`${open.url}/v2/team/web/manifests/nope`, { headers: accept });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    assert.equal(pulls.unflushed, 2, 'HEAD, 304 and 404 are not pulls');
    await pulls.flush();
    const page = await open.server.app.discovery.pages.repository({ kind: 'anonymous' }, 'team/web');
    assert.equal(page.pull_count, 2);
  });
});

describe('with notification endpoints, the edge events reach both the endpoint and discovery', () => {
  let b: TestBerth;
  let listener: Server;
  const envelopes: { events: { action: string; target: { repository: string; tag?: string; mediaType?: string } }[] }[] = [];
  before(async () => {
    listener = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += String(c)));
      req.on('end', () => {
        envelopes.push(JSON.parse(body) as (typeof envelopes)[number]);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    b = await startBerth({
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'listener',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: `http://127.0.0.1:${(listener.address() as AddressInfo).port}/events`,
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '1s',
      REGISTRY_NOTIFICATIONS_ENDPOINTS_0_BACKOFF: '200ms',
    });
  });
  after(async () => {
    await b?.close();
    await new Promise((resolve) => listener?.close(resolve));
  });

  it('a push is delivered as a notification and recorded as activity; a pull is delivered and counted', async () => {
    const { manifest } = await pushSmallImage(fetch, b.url, 'team/app', 'v1');
    const activity = await b.server.app.discovery.activity.read({ kind: 'anonymous' }, { repository: 'team/app' });
    assert.deepEqual(
      activity.entries.map((e) => [e.action, e.tag, e.digest]),
      [['push', 'v1', manifest]],
    );
    const got = await fetch(`${b.url}/v2/team/app/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    await got.arrayBuffer();
    assert.equal(b.server.app.discovery.pulls.unflushed, 1);
    const seen = () => envelopes.flatMap((e) => e.events).filter((e) => e.target.repository === 'team/app' && e.target.tag === 'v1');
    const deadline = Date.now() + 15_000;
    while (seen().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      seen()
        .map((e) => e.action)
        .sort(),
      ['pull', 'push'],
    );
  });
});
