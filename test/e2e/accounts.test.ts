/**
 * Berth with accounts, over HTTP as clients speak it (the Bearer flow of
 * test/support/bearer.ts, and Basic credentials): who may push and pull
 * what (owners, another user, anonymous, an organization's read team, a
 * robot, personal access tokens revoked and tokens expired), one-component
 * names, the catalog, Berth's own API, the token endpoint's keys and audit
 * entries; and the leak test: for anonymous callers, a wrong password,
 * another user and a revoked token, every route answers a private
 * repository byte for byte as it answers a missing one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { KeyRing, TokenIssuer } from '../../src/auth/token/index.js';
import { CLI } from '../../src/hub/index.js';
import { CredentialQueries } from '../../src/metadata/credentials.js';
import { SigningKeyQueries } from '../../src/metadata/keys.js';
import { basic, pushSmallImage, startAccountsBerth, type AccountsBerth } from '../support/accounts.js';
import { BearerClient, parseChallenge } from '../support/bearer.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by the assertions
const json = (res: Response): Promise<any> => res.json();
const pw = (name: string) => `${name}-password-${randomBytes(4).toString('hex')}`;

describe('Berth with accounts: access over HTTP', () => {
  let b: AccountsBerth;
  const users: Record<string, { user: string; password: string }> = {};
  const as = (name: string) => new BearerClient(users[name]).fetch;

  before(async () => {
    b = await startAccountsBerth();
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      users[name] = { user: name, password: pw(name) };
      await b.addUser(name, users[name]!.password);
    }
    users.chief = b.admin;
    await b.cli(['org', 'add', 'acme', '--owner', 'carol']);
    await b.hub.organizations.createTeam('acme', 'readers', CLI);
    await b.hub.organizations.addTeamMember('acme', 'readers', 'dave', CLI);
    await b.hub.organizations.setTeamPermission('acme', 'readers', '*', 'read', CLI);
  });
  after(() => b?.close());

  it('GET /v2/ challenges anonymous callers to its own token endpoint, without a scope', async () => {
    const res = await fetch(`${b.url}/v2/`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="${b.url}/token",service="berth"`);
    assert.equal((await json(res)).errors[0].code, 'UNAUTHORIZED');
    // With a token, or with Basic credentials, it answers.
    assert.equal((await as('alice')(`${b.url}/v2/`)).status, 200);
    assert.equal((await fetch(`${b.url}/v2/`, { headers: { Authorization: basic('alice', users.alice!.password) } })).status, 200);
  });

  it('a push to a new name is challenged with the scope it needs; alice pushes alice/app, which is private', async () => {
    const res = await fetch(`${b.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(res.status, 401);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    assert.deepEqual(c?.params, { realm: `${b.url}/token`, service: 'berth', scope: 'repository:alice/app:pull,push' });
    await pushSmallImage(as('alice'), b.url, 'alice/app', 'v1');
    assert.equal(await b.hub.repositories.visibility('alice/app'), 'private');
    const tags = await as('alice')(`${b.url}/v2/alice/app/tags/list`);
    assert.deepEqual(await json(tags), { name: 'alice/app', tags: ['v1'] });
  });

  it('bob may not push to alice/app (403 DENIED), by token or Basic; nor create alice/other', async () => {
    for (const repo of ['alice/app', 'alice/other']) {
      const byToken = await as('bob')(`${b.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
      assert.equal(byToken.status, 403);
      assert.deepEqual(await json(byToken), { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] });
      const byBasic = await fetch(`${b.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { Authorization: basic('bob', users.bob!.password) } });
      assert.equal(byBasic.status, 403);
    }
  });

  it('a token that lacks a scope its holder could have is answered insufficient_scope', async () => {
    const token = await json(await fetch(`${b.url}/token?service=berth&scope=repository:alice/app:pull`, { headers: { Authorization: basic('alice', users.alice!.password) } }));
    const res = await fetch(`${b.url}/v2/alice/app/blobs/uploads/`, { method: 'POST', headers: { Authorization: `Bearer ${token.token}` } });
    assert.equal(res.status, 401);
    assert.equal(parseChallenge(res.headers.get('www-authenticate'))?.params.error, 'insufficient_scope');
    assert.equal(parseChallenge(res.headers.get('www-authenticate'))?.params.scope, 'repository:alice/app:pull,push');
  });

  it('anonymous pulls alice/app once it is public, and the catalog shows it to everyone then', async () => {
    const anon = new BearerClient().fetch;
    assert.equal((await anon(`${b.url}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } })).status, 401);
    assert.deepEqual((await json(await as('bob')(`${b.url}/v2/_catalog`))).repositories, []);
    assert.deepEqual((await json(await as('alice')(`${b.url}/v2/_catalog`))).repositories, ['alice/app']);
    await b.hub.repositories.setVisibility('alice/app', 'public', CLI);
    const res = await anon(`${b.url}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } });
    assert.equal(res.status, 200);
    assert.deepEqual((await json(await anon(`${b.url}/v2/_catalog`))).repositories, ['alice/app']);
    // Still nobody else's to push to.
    assert.equal((await anon(`${b.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' })).status, 401);
    assert.equal((await as('bob')(`${b.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' })).status, 403);
    await b.hub.repositories.setVisibility('alice/app', 'private', CLI);
  });

  it('the catalog lists what the caller may read, a full page at a time', async () => {
    await pushSmallImage(as('alice'), b.url, 'alice/b-private', 'v1');
    await pushSmallImage(as('alice'), b.url, 'alice/c-public', 'v1');
    await b.hub.repositories.setVisibility('alice/c-public', 'public', CLI);
    // bob may read only alice/c-public: a page of one after "a" is that one, not an empty page for alice/app or b-private.
    const page = await as('bob')(`${b.url}/v2/_catalog?n=1`);
    assert.deepEqual(await json(page), { repositories: ['alice/c-public'] });
    assert.equal(page.headers.get('link'), null);
    const first = await as('alice')(`${b.url}/v2/_catalog?n=2`);
    assert.deepEqual(await json(first), { repositories: ['alice/app', 'alice/b-private'] });
    assert.equal(first.headers.get('link'), '</v2/_catalog?n=2&last=alice%2Fb-private>; rel="next"');
    const all = await as('chief')(`${b.url}/v2/_catalog`);
    assert.deepEqual((await json(all)).repositories, ['alice/app', 'alice/b-private', 'alice/c-public']);
  });

  it("an organization's read team pulls but does not push; a robot pushes only to its repository", async () => {
    await pushSmallImage(as('carol'), b.url, 'acme/api', 'v1');
    const dave = as('dave');
    assert.equal((await dave(`${b.url}/v2/acme/api/manifests/v1`, { headers: { Accept: OCI } })).status, 200);
    assert.equal((await dave(`${b.url}/v2/acme/api/blobs/uploads/`, { method: 'POST' })).status, 403);
    const robot = await b.hub.robots.create('acme', { name: 'ci', permissions: [{ repository: 'acme/api', permission: 'write' }] }, CLI);
    const ci = new BearerClient({ user: 'acme+ci', password: robot.secret }).fetch;
    await pushSmallImage(ci, b.url, 'acme/api', 'v2');
    for (const repo of ['acme/other', 'alice/app']) assert.equal((await ci(`${b.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })).status, 403, repo);
    await b.hub.robots.disable('acme', 'ci', CLI);
    // Its tokens stop at once (within the status cache's second), and it gets no new one.
    await new Promise((r) => setTimeout(r, 1100));
    const refused = await ci(`${b.url}/v2/acme/api/tags/list`).catch((e: Error) => e);
    assert.ok(refused instanceof Error && /token endpoint answered 401/.test(refused.message), String(refused));
  });

  it('a revoked personal access token stops working at once: its tokens, Basic and the token endpoint', async () => {
    const secret = (await b.cli(['token', 'add', 'alice', 'ci', '--scope', 'read,write'])).trim();
    assert.match(secret, /^bpat_/);
    const client = new BearerClient({ user: 'alice', password: secret });
    assert.equal((await client.fetch(`${b.url}/v2/alice/app/tags/list`)).status, 200);
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: basic('alice', secret) } })).status, 200);
    // A delete is beyond the token's scopes, whatever alice may do.
    assert.equal((await client.fetch(`${b.url}/v2/alice/app/manifests/v1`, { method: 'DELETE' })).status, 403);
    const [info] = await b.hub.tokens.list('alice');
    await b.hub.tokens.revoke('alice', info!.id, CLI);
    await new Promise((r) => setTimeout(r, 1100));
    const res = await client.fetch(`${b.url}/v2/alice/app/tags/list`).catch((e: Error) => e);
    // The client's cached token is refused (invalid_token); fetching a new one is refused too.
    assert.ok(res instanceof Error && /token endpoint answered 401/.test(res.message), String(res));
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: basic('alice', secret) } })).status, 401);
  });

  it('an expired token, and a token signed by a key Berth does not hold, are refused with invalid_token', async () => {
    const keys = await KeyRing.open(new SigningKeyQueries(b.store));
    const past = new TokenIssuer({ keys, issuer: 'berth', service: 'berth', lifetimeMs: 60_000, now: () => Date.now() - 3_600_000 });
    const alice = await b.hub.accounts.get('alice');
    const expired = await past.issue({ kind: 'user', id: alice!.id, name: 'alice', admin: false }, [{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    const res = await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${expired.token}` } });
    assert.equal(res.status, 401);
    assert.equal(parseChallenge(res.headers.get('www-authenticate'))?.params.error, 'invalid_token');
    const current = new TokenIssuer({ keys, issuer: 'berth', service: 'berth', lifetimeMs: 60_000 });
    const fine = await current.issue({ kind: 'user', id: alice!.id, name: 'alice', admin: false }, [{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${fine.token}` } })).status, 200);
    const [h, p] = fine.token.split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64, 1).toString('base64url')}`;
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${forged}` } })).status, 401);
  });

  it('a one-component name is library/NAME, in paths and in the token endpoint\'s scopes', async () => {
    const chief = as('chief');
    await pushSmallImage(chief, b.url, 'ubuntu', 'latest');
    assert.deepEqual(await json(await chief(`${b.url}/v2/library/ubuntu/tags/list`)), { name: 'library/ubuntu', tags: ['latest'] });
    const res = await fetch(`${b.url}/token?service=berth&scope=repository:ubuntu:pull`, { headers: { Authorization: basic(b.admin.user, b.admin.password) } });
    const claims = JSON.parse(Buffer.from((await json(res)).token.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.access, [{ type: 'repository', name: 'library/ubuntu', actions: ['pull'] }]);
    // Only administrators own library/.
    assert.equal((await as('alice')(`${b.url}/v2/ubuntu/blobs/uploads/`, { method: 'POST' })).status, 403);
  });

  it('/berth/v1/: administrators run gc; a repository is deleted by whoever may delete it', async () => {
    assert.equal((await fetch(`${b.url}/berth/v1/storage`)).status, 401);
    assert.equal((await fetch(`${b.url}/berth/v1/storage`, { headers: { Authorization: basic('alice', users.alice!.password) } })).status, 403);
    assert.equal((await fetch(`${b.url}/berth/v1/storage`, { headers: { Authorization: basic(b.admin.user, b.admin.password) } })).status, 200);
    const gc = await fetch(`${b.url}/berth/v1/gc?dryrun=true&wait=true`, { method: 'POST', headers: { Authorization: basic(b.admin.user, b.admin.password) } });
    assert.equal(gc.status, 200, await gc.clone().text());
    await pushSmallImage(as('alice'), b.url, 'alice/doomed', 'v1');
    // bob cannot see the private repository: answered as a missing one; once he can read it, refused.
    const bob = await fetch(`${b.url}/berth/v1/repositories/alice/doomed`, { method: 'DELETE', headers: { Authorization: basic('bob', users.bob!.password) } });
    assert.equal(bob.status, 404);
    assert.equal((await json(bob)).errors[0].code, 'NAME_UNKNOWN');
    await b.hub.repositories.setVisibility('alice/doomed', 'public', CLI);
    const bobPublic = await fetch(`${b.url}/berth/v1/repositories/alice/doomed`, { method: 'DELETE', headers: { Authorization: basic('bob', users.bob!.password) } });
    assert.equal(bobPublic.status, 403);
    const alice = await fetch(`${b.url}/berth/v1/repositories/alice/doomed`, { method: 'DELETE', headers: { Authorization: basic('alice', users.alice!.password) } });
    assert.equal(alice.status, 202, await alice.clone().text());
  });

  it('the token endpoint serves its keys, and a docker login session is audited with its request id', async () => {
    const jwks = await json(await fetch(`${b.url}/token/jwks.json`));
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].alg, 'ES256');
    const pem = await (await fetch(`${b.url}/token/certs.pem`)).text();
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    const res = await fetch(`${b.url}/token?account=alice&client_id=docker&offline_token=true&service=berth`, {
      headers: { Authorization: basic('alice', users.alice!.password), 'X-Request-Id': 'login-request-1' },
    });
    const body = await json(res);
    assert.equal(res.status, 200);
    assert.match(body.refresh_token, /./);
    const entries = (await new CredentialQueries(b.store).audit({ limit: 20 })).filter((e) => e.requestId === 'login-request-1');
    assert.deepEqual(entries.map((e) => e.action).sort(), ['login', 'session.create']);
  });
});

describe('leak test: a private repository answers as a missing one', () => {
  let b: AccountsBerth;
  let alicePassword: string;
  let digests: { manifest: string; layer: string; config: string };
  /** Answers to compare: status, headers that are not per request, body; the repository name made neutral. */
  const seen = async (res: Response, name: string) => {
    const headers = [...res.headers].filter(([k]) => !['date', 'x-request-id', 'keep-alive', 'connection', 'docker-upload-uuid'].includes(k));
    const neutral = (s: string) => s.replaceAll(name, 'NAME').replace(/uploads\/[A-Za-z0-9_-]+/g, 'uploads/ID');
    return JSON.stringify({ status: res.status, headers: headers.map(([k, v]) => [k, neutral(v)]), body: neutral(await res.text()) });
  };

  before(async () => {
    b = await startAccountsBerth();
    alicePassword = pw('alice');
    await b.addUser('alice', alicePassword);
    await b.addUser('bob', 'bob-password-1');
    digests = await pushSmallImage(new BearerClient({ user: 'alice', password: alicePassword }).fetch, b.url, 'alice/secret', 'v1');
    // A referrer, so the private repository's referrers list is not empty.
    assert.equal(await b.hub.repositories.visibility('alice/secret'), 'private');
  });
  after(() => b?.close());

  /** Every request a client could make about repository `repo` (same-length names: 'alice/secret' and 'alice/absent'). */
  const requests = (repo: string): [string, string, RequestInit][] => [
    ['manifest by tag', `/v2/${repo}/manifests/v1`, { headers: { Accept: OCI } }],
    ['manifest HEAD', `/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI } }],
    ['manifest by digest', `/v2/${repo}/manifests/${digests.manifest}`, { headers: { Accept: OCI } }],
    ['manifest delete', `/v2/${repo}/manifests/${digests.manifest}`, { method: 'DELETE' }],
    ['manifest put', `/v2/${repo}/manifests/v2`, { method: 'PUT', headers: { 'Content-Type': OCI }, body: '{}' }],
    ['blob', `/v2/${repo}/blobs/${digests.layer}`, {}],
    ['blob HEAD', `/v2/${repo}/blobs/${digests.layer}`, { method: 'HEAD' }],
    ['blob delete', `/v2/${repo}/blobs/${digests.layer}`, { method: 'DELETE' }],
    ['tags', `/v2/${repo}/tags/list`, {}],
    ['referrers', `/v2/${repo}/referrers/${digests.manifest}`, {}],
    ['upload', `/v2/${repo}/blobs/uploads/`, { method: 'POST' }],
    ['upload status', `/v2/${repo}/blobs/uploads/00000000-0000-0000-0000-000000000000`, {}],
    ['mount from it', `/v2/bob/tmp/blobs/uploads/?mount=${digests.layer}&from=${repo}`, { method: 'POST' }],
    ['berth api', `/berth/v1/repositories/${repo}`, {}],
  ];

  const callers: [string, () => typeof fetch][] = [
    ['anonymous, no credentials', () => fetch],
    ['anonymous with an anonymous token', () => new BearerClient().fetch],
    ['a wrong password (Basic)', () => (u, init = {}) => fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basic('alice', 'wrong-password') } })],
    ['another user (tokens)', () => new BearerClient({ user: 'bob', password: 'bob-password-1' }).fetch],
    ['another user (Basic)', () => (u, init = {}) => fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basic('bob', 'bob-password-1') } })],
  ];

  for (const [who, make] of callers) {
    it(`${who}: every route answers alice/secret exactly as alice/absent`, async () => {
      const f = make();
      const secret = requests('alice/secret');
      const absent = requests('alice/absent');
      for (let i = 0; i < secret.length; i++) {
        const [what, path, init] = secret[i]!;
        const a = await seen(await f(`${b.url}${path}`, init), 'alice/secret');
        const m = await seen(await f(`${b.url}${absent[i]![1]}`, absent[i]![2]), 'alice/absent');
        assert.equal(a, m, `${what}: private and missing differ`);
        assert.ok(!a.includes(digests.config), `${what}: the answer names content of the private repository`);
      }
    });
  }

  it('a revoked token: the same answers for both, and nothing of either', async () => {
    const secret = (await b.cli(['token', 'add', 'alice', 'leak', '--scope', 'read,write,delete'])).trim();
    const client = new BearerClient({ user: 'alice', password: secret });
    // Tokens for both names while the PAT holds (alice may read alice/absent: it is her namespace).
    for (const repo of ['alice/secret', 'alice/absent']) await client.fetch(`${b.url}/v2/${repo}/tags/list`);
    const info = (await b.hub.tokens.list('alice')).find((t) => t.name === 'leak');
    await b.hub.tokens.revoke('alice', info!.id, CLI);
    await new Promise((r) => setTimeout(r, 1100));
    const secretRequests = requests('alice/secret');
    const absentRequests = requests('alice/absent');
    for (let i = 0; i < secretRequests.length; i++) {
      const [what, path, init] = secretRequests[i]!;
      const tokenFor = (repo: string) => client.authorization(b.url, 'GET', `/v2/${repo}/tags/list`);
      const withToken = async (p: string, i2: RequestInit, repo: string) => fetch(`${b.url}${p}`, { ...i2, headers: { ...(i2.headers as Record<string, string>), Authorization: await tokenFor(repo) } });
      const a = await seen(await withToken(path, init, 'alice/secret'), 'alice/secret');
      const m = await seen(await withToken(absentRequests[i]![1], absentRequests[i]![2], 'alice/absent'), 'alice/absent');
      assert.equal(a, m, `${what}: private and missing differ`);
      assert.match(a, /"status":40[13]/, `${what}: refused`);
    }
  });

  it('the catalog and the automatic mount show nothing of it to others', async () => {
    const bob = new BearerClient({ user: 'bob', password: 'bob-password-1' }).fetch;
    assert.deepEqual(await json(await bob(`${b.url}/v2/_catalog`)), { repositories: [] });
    assert.deepEqual(await json(await new BearerClient().fetch(`${b.url}/v2/_catalog`)), { repositories: [] });
    // A mount without `from` looks in every repository bob may read: not alice/secret, so an upload starts (202) as for an unknown blob.
    const mount = await bob(`${b.url}/v2/bob/tmp/blobs/uploads/?mount=${digests.layer}`, { method: 'POST' });
    assert.equal(mount.status, 202);
    assert.equal((await bob(`${b.url}/v2/bob/tmp/blobs/${digests.layer}`)).status, 404);
    // alice's own mount finds it. (Her password is locked out by the wrong-password round above, as
    // the login limits say; a personal access token is not.)
    const pat = (await b.cli(['token', 'add', 'alice', 'mount', '--scope', 'read,write'])).trim();
    const alice = new BearerClient({ user: 'alice', password: pat }).fetch;
    assert.equal((await alice(`${b.url}/v2/alice/copy/blobs/uploads/?mount=${digests.layer}`, { method: 'POST' })).status, 201);
  });
});
