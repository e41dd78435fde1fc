/**
 * The Hub's JSON API (/berth/v1/) over real HTTP, against Berth started as
 * a user starts it (config.yml with auth.accounts, the first administrator
 * from `berth user add --admin`, `berth serve`): registration by each
 * setting, sessions with their cookie and CSRF token, personal access tokens
 * that work for docker-login-style Basic on /v2/ and stop when revoked,
 * organizations, teams, collaborators and visibility changing what /v2/
 * allows, the filtered and paginated repository list, the audit log, login
 * limits, bounded bodies, no secret in the logs; a leak test (a private
 * repository's API resources answer as a missing one's); and the served
 * OpenAPI document against what the server routes, with accounts on and off.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basic, pushSmallImage, startAccountsBerth, type AccountsBerth } from '../support/accounts.js';
import { BearerClient } from '../support/bearer.js';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { freePort } from '../support/tools.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const pw = (name: string) => `${name}-pw-${randomBytes(6).toString('hex')}`;

interface Call {
  auth?: string;
  session?: Session;
  /** false: the cookie without X-CSRF-Token; a string: that token. */
  csrf?: boolean | string;
  body?: unknown;
  headers?: Record<string, string>;
}
interface Session {
  cookie: string;
  csrf: string;
}
interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- checked by the assertions
  json: any;
}

async function call(base: string, method: string, p: string, c: Call = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...c.headers };
  if (c.auth) headers.Authorization = c.auth;
  if (c.session) {
    headers.Cookie = c.session.cookie;
    if (c.csrf !== false) headers['X-CSRF-Token'] = typeof c.csrf === 'string' ? c.csrf : c.session.csrf;
  }
  let body: string | undefined;
  if (c.body !== undefined) {
    body = JSON.stringify(c.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${p}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A fetch that sends Basic credentials on every request (curl -u, scripts). */
const withBasic =
  (user: string, secret: string): typeof fetch =>
  (u, init = {}) =>
    fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basic(user, secret) } });

describe('the Hub JSON API over HTTP (registration open)', () => {
  let b: AccountsBerth;
  const secrets: string[] = [];
  const passwords: Record<string, string> = {};
  const api = (method: string, p: string, c?: Call) => call(b.url, method, p, c);
  const asUser = (name: string) => basic(name, passwords[name]!);

  async function login(name: string, requestId?: string): Promise<Session> {
    const res = await api('POST', '/berth/v1/sessions', { body: { username: name, password: passwords[name] }, headers: requestId ? { 'X-Request-Id': requestId } : {} });
    assert.equal(res.status, 201, res.text);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const m = /^berth_session=(bses_[A-Za-z0-9_-]+);/.exec(setCookie);
    assert.ok(m, setCookie);
    secrets.push(m[1]!, res.json.csrfToken);
    return { cookie: `berth_session=${m[1]}`, csrf: res.json.csrfToken };
  }

  before(async () => {
    b = await startAccountsBerth('', { registration: 'open' });
    passwords.chief = b.admin.password;
    secrets.push(b.admin.password);
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      passwords[name] = pw(name);
      secrets.push(passwords[name]!);
    }
  });
  after(() => b?.close());

  it('open registration: anyone registers; a name in use is 409; only administrators make administrators', async () => {
    for (const name of ['alice', 'bob', 'carol', 'dave']) {
      const res = await api('POST', '/berth/v1/accounts', { body: { name, password: passwords[name] } });
      assert.equal(res.status, 201, res.text);
      assert.deepEqual([res.json.name, res.json.kind, res.json.admin], [name, 'user', false]);
    }
    const taken = await api('POST', '/berth/v1/accounts', { body: { name: 'alice', password: pw('x') } });
    assert.equal(taken.status, 409);
    assert.equal(taken.json.errors[0].code, 'NAME_TAKEN');
    const sneaky = await api('POST', '/berth/v1/accounts', { body: { name: 'eve', password: pw('eve'), admin: true } });
    assert.equal(sneaky.status, 403);
    assert.equal((await api('GET', '/berth/v1/accounts/eve', { auth: asUser('chief') })).status, 404);
    // The account works on /v2/ at once.
    assert.equal((await fetch(`${b.url}/v2/`, { headers: { Authorization: asUser('alice') } })).status, 200);
  });

  it('no credentials where they are needed, and wrong ones, are 401 without any challenge', async () => {
    const anonymous = await api('GET', '/berth/v1/me');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), null);
    assert.deepEqual(anonymous.json, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] });
    const wrong = await api('GET', '/berth/v1/repositories', { auth: basic('alice', 'not-her-password') });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('www-authenticate'), null);
    assert.equal(wrong.text, anonymous.text);
    // Anonymous callers are let through to what needs no credentials (the edge does not challenge them).
    assert.equal((await api('GET', '/berth/v1/repositories')).status, 200);
    const me = await api('GET', '/berth/v1/me', { auth: asUser('alice') });
    assert.equal(me.status, 200);
    assert.deepEqual([me.json.name, me.json.authenticatedBy], ['alice', 'authorization']);
  });

  it('bodies: JSON only (415), at most 64 KiB (413, read no further), schema errors name the field', async () => {
    const form = await api('POST', '/berth/v1/sessions', { body: { username: 'alice', password: 'x' }, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 415);
    assert.equal(form.json.errors[0].code, 'UNSUPPORTED_MEDIA_TYPE');
    const big = await api('POST', '/berth/v1/sessions', { body: { username: 'alice', password: 'x'.repeat(70 * 1024) } });
    assert.equal(big.status, 413);
    assert.equal(big.json.errors[0].code, 'TOO_LARGE');
    // A chunked body that never ends: refused once past the bound, and the connection closed.
    const streamed = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
      const url = new URL(`${b.url}/berth/v1/sessions`);
      let answered = false;
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'X-Request-Id': 'api-streamed-1' } }, (res) => {
        answered = true;
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
      });
      // Once answered, the server closes the connection under the rest of the body: that is the point.
      req.on('error', (err) => (answered ? undefined : reject(err)));
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        // 2 MiB: within what the edge drains from a refused request before it cuts the connection (a reset could lose the answer).
        while (!answered && sent < 2 * 1024 * 1024) {
          sent += chunk.byteLength;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
      };
      req.write('{"username":"alice","password":"');
      pump();
    });
    assert.equal(streamed.status, 413);
    assert.equal(JSON.parse(streamed.body).errors[0].code, 'TOO_LARGE');
    assert.equal(streamed.connection, 'close');
    // The handler stopped at the bound: the access log counts what it read.
    // (Logged when the connection closes, after the edge's lingering close.)
    let line: string | undefined;
    for (const deadline = Date.now() + 10_000; !line && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      line = b.process
        .output()
        .split('\n')
        .find((l) => l.includes('"reqId":"api-streamed-1"'));
    }
    assert.ok(line, 'the refused request is in the access log');
    const logged = JSON.parse(line) as { status: number; bytesIn: number };
    assert.equal(logged.status, 413);
    assert.ok(logged.bytesIn > 64 * 1024 && logged.bytesIn < 256 * 1024, `read ${logged.bytesIn} bytes`);
    const unknownField = await api('POST', '/berth/v1/sessions', { body: { username: 'alice', password: 'x', remember: true } });
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.json.errors[0].message, /^body\.remember: unknown field/);
  });

  it('a session: the cookie and its CSRF token; changes without the token are refused and change nothing; log out ends it', async () => {
    const s = await login('alice', 'api-login-1');
    const res = await api('POST', '/berth/v1/sessions', { body: { username: 'alice', password: passwords.alice } });
    const cookie = res.headers.get('set-cookie')!;
    assert.match(cookie, /; Path=\/berth\/; Max-Age=\d+; SameSite=Strict; HttpOnly$/);
    secrets.push(/berth_session=([^;]+)/.exec(cookie)![1]!, res.json.csrfToken);
    const me = await api('GET', '/berth/v1/me', { session: s, csrf: false });
    assert.deepEqual([me.status, me.json.name, me.json.authenticatedBy], [200, 'alice', 'session']);
    assert.equal((await api('GET', '/berth/v1/sessions/current', { session: s, csrf: false })).json.csrfToken, s.csrf);

    // One character changed (never to itself, whatever the token ends with).
    const altered = `${s.csrf.slice(0, -1)}${s.csrf.endsWith('A') ? 'B' : 'A'}`;
    for (const csrf of [false, 'not-the-token', altered] as const) {
      const refused = await api('PUT', '/berth/v1/accounts/alice/email', { session: s, csrf, body: { email: 'evil@example.com' } });
      assert.equal(refused.status, 403, String(csrf));
      assert.equal(refused.json.errors[0].code, 'DENIED');
      const refusedToken = await api('POST', '/berth/v1/accounts/alice/tokens', { session: s, csrf, body: { name: 'sneaky', scopes: ['read'] } });
      assert.equal(refusedToken.status, 403);
    }
    assert.equal((await api('GET', '/berth/v1/accounts/alice', { session: s })).json.email, null);
    assert.deepEqual((await api('GET', '/berth/v1/accounts/alice/tokens', { session: s })).json.items, []);
    assert.equal((await api('PUT', '/berth/v1/accounts/alice/email', { session: s, body: { email: 'alice@example.com' } })).status, 204);
    assert.equal((await api('GET', '/berth/v1/accounts/alice', { session: s })).json.email, 'alice@example.com');

    // Log out: needs the token too, removes the cookie, and the old cookie is nobody's any more.
    assert.equal((await api('DELETE', '/berth/v1/sessions/current', { session: s, csrf: false })).status, 403);
    const out = await api('DELETE', '/berth/v1/sessions/current', { session: s });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /^berth_session=; Path=\/berth\/; Max-Age=0;/);
    assert.equal((await api('GET', '/berth/v1/me', { session: s })).status, 401);
    assert.equal((await api('PUT', '/berth/v1/accounts/alice/email', { session: s, body: { email: null } })).status, 401);
  });

  let patId = 0;
  let pat = '';
  it('a personal access token made through the API works as docker login does, and revoking it through the API stops it', async () => {
    const s = await login('alice');
    const made = await api('POST', '/berth/v1/accounts/alice/tokens', { session: s, body: { name: 'laptop', scopes: ['read', 'write'] }, headers: { 'X-Request-Id': 'api-token-1' } });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.headers.get('cache-control'), 'no-store');
    pat = made.json.secret;
    patId = made.json.id;
    secrets.push(pat);
    assert.match(pat, /^bpat_/);
    // The list never shows the secret.
    const listed = await api('GET', '/berth/v1/accounts/alice/tokens', { session: s });
    assert.deepEqual(listed.json.items.map((t: { name: string }) => t.name), ['laptop']);
    assert.ok(!listed.text.includes(pat));

    // docker login: GET /v2/, then the token endpoint with Basic and offline_token; a refresh token afterwards.
    const v2 = await fetch(`${b.url}/v2/`, { headers: { Authorization: basic('alice', pat) } });
    assert.equal(v2.status, 200);
    const login1 = await fetch(`${b.url}/token?account=alice&client_id=docker&offline_token=true&service=berth`, { headers: { Authorization: basic('alice', pat) } });
    assert.equal(login1.status, 200);
    const refresh = ((await login1.json()) as { refresh_token: string }).refresh_token;
    secrets.push(refresh);
    await pushSmallImage(withBasic('alice', pat), b.url, 'alice/app', 'v1');
    const byRefresh = async () =>
      fetch(`${b.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `grant_type=refresh_token&refresh_token=${refresh}&service=berth&client_id=docker&scope=repository:alice/app:pull` });
    const access = (await (await byRefresh()).json()) as { token: string };
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${access.token}` } })).status, 200);

    // A token cannot mint tokens.
    assert.equal((await api('POST', '/berth/v1/accounts/alice/tokens', { auth: basic('alice', pat), body: { name: 'more', scopes: ['read'] } })).status, 403);

    const revoked = await api('DELETE', `/berth/v1/accounts/alice/tokens/${patId}`, { session: s });
    assert.equal(revoked.status, 204);
    // Within the credential status cache's second: Basic, its refresh token and the access token issued through it.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: basic('alice', pat) } })).status, 401);
    assert.equal((await byRefresh()).status, 401);
    assert.equal((await fetch(`${b.url}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${access.token}` } })).status, 401);
    assert.equal((await api('GET', '/berth/v1/me', { auth: basic('alice', pat) })).status, 401);
    assert.equal((await api('GET', '/berth/v1/accounts/alice/tokens', { session: s })).json.items[0].revoked, true);
  });

  it('visibility through the API changes what /v2/ allows: public → anonymous pulls', async () => {
    const anon = new BearerClient().fetch;
    assert.equal((await anon(`${b.url}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } })).status, 401);
    const bob = await api('PATCH', '/berth/v1/repositories/alice/app', { auth: asUser('bob'), body: { visibility: 'public' } });
    assert.equal(bob.status, 404);
    const s = await login('alice');
    const res = await api('PATCH', '/berth/v1/repositories/alice/app', { session: s, body: { visibility: 'public' }, headers: { 'X-Request-Id': 'api-visibility-1' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.visibility, 'public');
    assert.equal((await anon(`${b.url}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } })).status, 200);
    // Public is not writable: bob still cannot push, nor change it back.
    assert.equal((await withBasic('bob', passwords.bob!)(`${b.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' })).status, 403);
    assert.equal((await api('PATCH', '/berth/v1/repositories/alice/app', { auth: asUser('bob'), body: { visibility: 'private' } })).status, 403);
  });

  it('organizations, teams, members and collaborators through the API change what /v2/ allows', async () => {
    const carol = await login('carol');
    assert.equal((await api('POST', '/berth/v1/orgs', { session: carol, body: { name: 'acme' } })).status, 201);
    await pushSmallImage(withBasic('carol', passwords.carol!), b.url, 'acme/api', 'v1');
    const bobPull = withBasic('bob', passwords.bob!);
    assert.equal((await bobPull(`${b.url}/v2/acme/api/manifests/v1`, { headers: { Accept: OCI } })).status, 403);

    assert.equal((await api('POST', '/berth/v1/orgs/acme/teams', { session: carol, body: { name: 'readers' } })).status, 201);
    assert.equal((await api('PUT', '/berth/v1/orgs/acme/teams/readers/members/bob', { session: carol })).status, 204);
    assert.equal((await api('PUT', '/berth/v1/orgs/acme/teams/readers/permissions', { session: carol, body: { repository: 'acme/api', permission: 'read' } })).status, 204);
    assert.equal((await bobPull(`${b.url}/v2/acme/api/manifests/v1`, { headers: { Accept: OCI } })).status, 200);
    assert.equal((await bobPull(`${b.url}/v2/acme/api/blobs/uploads/`, { method: 'POST' })).status, 403);
    // A member sees the organization; bob is not an owner, so he may not add members.
    assert.deepEqual((await api('GET', '/berth/v1/orgs/acme/members', { auth: asUser('bob') })).json.items.map((m: { name: string }) => m.name), ['bob', 'carol']);
    assert.equal((await api('PUT', '/berth/v1/orgs/acme/members/dave', { auth: asUser('bob') })).status, 403);
    const permissionsOf = async (auth: string) => {
      const list = await api('GET', '/berth/v1/orgs/acme/teams/readers/permissions', { auth });
      const team = await api('GET', '/berth/v1/orgs/acme/teams/readers', { auth });
      assert.deepEqual([list.status, team.status], [200, 200], list.text + team.text);
      const repos = list.json.items.map((p: { repository: string }) => p.repository);
      assert.deepEqual(team.json.permissions.map((p: { repository: string }) => p.repository), repos);
      return repos;
    };
    assert.deepEqual(await permissionsOf(asUser('bob')), ['acme/api']);
    // Out of the team, out of the repository.
    assert.equal((await api('DELETE', '/berth/v1/orgs/acme/teams/readers/members/bob', { session: carol })).status, 204);
    assert.equal((await bobPull(`${b.url}/v2/acme/api/manifests/v1`, { headers: { Accept: OCI } })).status, 403);
    // Still a member of acme, bob no longer reads the private acme/api: no team of it names it to him; its owner sees it.
    assert.deepEqual(await permissionsOf(asUser('bob')), []);
    assert.deepEqual(await permissionsOf(asUser('carol')), ['acme/api']);

    // A collaborator with write on a user's repository pushes to it.
    const alice = await login('alice');
    await pushSmallImage(withBasic('alice', passwords.alice!), b.url, 'alice/shared', 'v1');
    const davePush = withBasic('dave', passwords.dave!);
    assert.equal((await davePush(`${b.url}/v2/alice/shared/blobs/uploads/`, { method: 'POST' })).status, 403);
    assert.equal((await api('PUT', '/berth/v1/repositories/alice/shared/-/collaborators/dave', { session: alice, body: { permission: 'write' } })).status, 204);
    await pushSmallImage(davePush, b.url, 'alice/shared', 'v2');
    assert.deepEqual((await api('GET', '/berth/v1/repositories/alice/shared/-/collaborators', { session: alice })).json.items, [{ name: 'dave', permission: 'write' }]);
    assert.equal((await api('DELETE', '/berth/v1/repositories/alice/shared/-/collaborators/dave', { session: alice })).status, 204);
    assert.equal((await davePush(`${b.url}/v2/alice/shared/blobs/uploads/`, { method: 'POST' })).status, 403);
  });

  it('the repository list shows what the caller may read, a page at a time with Link', async () => {
    // alice: alice/app (public), alice/shared (private); carol: acme/api (private).
    const names = (a: Answer) => a.json.items.map((r: { name: string }) => r.name);
    assert.deepEqual(names(await api('GET', '/berth/v1/repositories')), ['alice/app']);
    assert.deepEqual(names(await api('GET', '/berth/v1/repositories', { auth: asUser('bob') })), ['alice/app']);
    assert.deepEqual(names(await api('GET', '/berth/v1/repositories', { auth: asUser('carol') })), ['acme/api', 'alice/app']);
    const first = await api('GET', '/berth/v1/repositories?n=1', { auth: asUser('chief') });
    assert.deepEqual([names(first), first.json.next], [['acme/api'], 'acme/api']);
    const link = first.headers.get('link');
    assert.equal(link, '</berth/v1/repositories?n=1&last=acme%2Fapi>; rel="next"');
    const second = await api('GET', /^<([^>]+)>/.exec(link!)![1]!, { auth: asUser('chief') });
    assert.deepEqual(names(second), ['alice/app']);
    const third = await api('GET', /^<([^>]+)>/.exec(second.headers.get('link')!)![1]!, { auth: asUser('chief') });
    assert.deepEqual([names(third), third.json.next, third.headers.get('link')], [['alice/shared'], null, null]);
    // bob's page of one is full: the private names before alice/app are filtered in the query.
    const bobPage = await api('GET', '/berth/v1/repositories?n=1', { auth: asUser('bob') });
    assert.deepEqual([names(bobPage), bobPage.headers.get('link')], [['alice/app'], null]);
  });

  it('failed logins are rate-limited and answer exactly as a wrong password', async () => {
    const answer = async (username: string, password: string) => {
      const res = await api('POST', '/berth/v1/sessions', { body: { username, password } });
      return JSON.stringify({ status: res.status, type: res.headers.get('content-type'), cookie: res.headers.get('set-cookie'), body: res.text });
    };
    const wrong = await answer('dave', 'wrong-password');
    assert.match(wrong, /"status":401/);
    assert.equal(await answer('nobody-here', 'wrong-password'), wrong);
    for (let i = 0; i < 9; i++) assert.equal(await answer('dave', `wrong-${i}`), wrong);
    // Locked out: the right password gets the wrong password's answer; others are not affected.
    assert.equal(await answer('dave', passwords.dave!), wrong);
    assert.equal((await api('POST', '/berth/v1/sessions', { body: { username: 'bob', password: passwords.bob } })).status, 201);
    const audit = await api('GET', '/berth/v1/audit?action=login.failed&target=dave', { auth: asUser('chief') });
    assert.ok(audit.json.items.some((e: { detail: { why?: string } }) => JSON.stringify(e.detail).includes('rate limited')), audit.text);
  });

  it('the audit log (administrators) shows the login, the token creation and the visibility change with their request ids', async () => {
    assert.equal((await api('GET', '/berth/v1/audit', { auth: asUser('alice') })).status, 403);
    const read = async (action: string) => (await api('GET', `/berth/v1/audit?action=${action}&n=1000`, { auth: asUser('chief') })).json.items as { actor: string; action: string; target: string; requestId: string; client: string }[];
    const login = (await read('login')).find((e) => e.requestId === 'api-login-1');
    assert.deepEqual([login?.actor, login?.target, login?.client], ['alice', 'alice', '127.0.0.1']);
    const token = (await read('token.create')).find((e) => e.requestId === 'api-token-1');
    assert.deepEqual([token?.actor, token?.target], ['alice', 'alice']);
    const visibility = (await read('repository.visibility')).find((e) => e.requestId === 'api-visibility-1');
    assert.deepEqual([visibility?.actor, visibility?.target], ['alice', 'alice/app']);
    assert.ok((await read('token.revoke')).some((e) => e.actor === 'alice'));
    assert.ok((await read('logout')).some((e) => e.actor === 'alice'));
  });

  it('administrators run gc and read storage through the API; others may not', async () => {
    assert.equal((await api('GET', '/berth/v1/storage')).status, 401);
    assert.equal((await api('GET', '/berth/v1/storage')).headers.get('www-authenticate'), null);
    assert.equal((await api('GET', '/berth/v1/storage', { auth: asUser('bob') })).status, 403);
    assert.equal((await api('GET', '/berth/v1/storage', { auth: asUser('chief') })).status, 200);
    assert.equal((await api('POST', '/berth/v1/gc?dryrun=true&wait=true', { auth: asUser('chief') })).status, 200);
  });

  it('discovery over HTTP: a README larger than the usual body bound is set by its admin and served rendered; search finds the repository', async () => {
    const s = await login('alice');
    const readme = `# alice/app\n\n${'A line of the README. '.repeat(5000)}\n<script>alert(1)</script>\n`;
    assert.ok(Buffer.byteLength(readme) > 64 * 1024, 'more than the usual 64 KiB bound');
    const set = await api('PUT', '/berth/v1/repositories/alice/app/-/readme', { session: s, body: { readme } });
    assert.equal(set.status, 204, set.text);
    const page = await api('GET', '/berth/v1/repositories/alice/app', { session: s });
    assert.equal(page.json.full_description, readme);
    assert.match(page.json.full_description_html, /<h1>alice\/app<\/h1>/);
    assert.doesNotMatch(page.json.full_description_html, /<script/);
    // bob is no admin of alice/app: refused, and the README is unchanged.
    assert.equal((await api('PUT', '/berth/v1/repositories/alice/app/-/readme', { auth: asUser('bob'), body: { readme: 'defaced' } })).status, 403);
    const found = await api('GET', '/berth/v1/search?q=app', { session: s });
    assert.equal(found.status, 200, found.text);
    assert.ok(found.json.items.some((r: { name: string }) => r.name === 'alice/app'), found.text);
  });

  it('no secret reaches the server log', async () => {
    const output = b.process.output();
    assert.ok(output.includes('"route":"api-login"'), 'the access log is on and names API routes');
    for (const secret of secrets) assert.ok(!output.includes(secret), `a secret (${secret.slice(0, 5)}…) is in the server log`);
  });
});

describe('registration closed and by invitation', () => {
  it('closed: anonymous registration is refused; an administrator creates accounts through the API', async () => {
    const b = await startAccountsBerth();
    try {
      const refused = await call(b.url, 'POST', '/berth/v1/accounts', { body: { name: 'alice', password: pw('alice') } });
      assert.equal(refused.status, 403);
      assert.equal(refused.json.errors[0].code, 'REGISTRATION_CLOSED');
      const password = pw('alice');
      const made = await call(b.url, 'POST', '/berth/v1/accounts', { auth: basic(b.admin.user, b.admin.password), body: { name: 'alice', password } });
      assert.equal(made.status, 201);
      assert.equal((await call(b.url, 'GET', '/berth/v1/me', { auth: basic('alice', password) })).json.name, 'alice');
      assert.equal((await call(b.url, 'POST', '/berth/v1/accounts', { auth: basic('alice', password), body: { name: 'bob', password: pw('bob') } })).status, 403);
    } finally {
      await b.close();
    }
  });

  it('invite: a code from an administrator registers once', async () => {
    const b = await startAccountsBerth('', { registration: 'invite' });
    try {
      assert.equal((await call(b.url, 'POST', '/berth/v1/accounts', { body: { name: 'alice', password: pw('alice') } })).json.errors[0].code, 'INVITATION_INVALID');
      const invitation = await call(b.url, 'POST', '/berth/v1/invitations', { auth: basic(b.admin.user, b.admin.password), body: {} });
      assert.equal(invitation.status, 201, invitation.text);
      const code = invitation.json.code as string;
      const made = await call(b.url, 'POST', '/berth/v1/accounts', { body: { name: 'alice', password: pw('alice'), invitation: code } });
      assert.equal(made.status, 201, made.text);
      const again = await call(b.url, 'POST', '/berth/v1/accounts', { body: { name: 'bob', password: pw('bob'), invitation: code } });
      assert.equal(again.status, 403);
      assert.equal(again.json.errors[0].code, 'INVITATION_INVALID');
      assert.ok(!b.process.output().includes(code), 'the invitation code is not logged');
    } finally {
      await b.close();
    }
  });
});

describe("leak test: a private repository's API resources answer as a missing one's", () => {
  let b: AccountsBerth;
  const alicePassword = pw('alice');
  const bobPassword = pw('bob');
  let revokedPat = '';
  let revokedBearer = '';
  /** Status, the headers that are not per request, and the body, the repository name made neutral. */
  const seen = async (res: Response, name: string) => {
    const headers = [...res.headers].filter(([k]) => !['date', 'x-request-id', 'keep-alive', 'connection'].includes(k));
    const neutral = (s: string) => s.replaceAll(name, 'NAME');
    return JSON.stringify({ status: res.status, headers: headers.map(([k, v]) => [k, neutral(v)]), body: neutral(await res.text()) });
  };

  before(async () => {
    b = await startAccountsBerth();
    await b.addUser('alice', alicePassword);
    await b.addUser('bob', bobPassword);
    await pushSmallImage(withBasic('alice', alicePassword), b.url, 'alice/secret', 'v1');
    assert.equal(await b.hub.repositories.visibility('alice/secret'), 'private');
    revokedPat = (await b.cli(['token', 'add', 'alice', 'leak', '--scope', 'read,write,delete'])).trim();
    const t = await fetch(`${b.url}/token?service=berth&scope=repository:alice/secret:pull,push,delete&scope=repository:alice/absent:pull,push,delete`, { headers: { Authorization: basic('alice', revokedPat) } });
    revokedBearer = ((await t.json()) as { token: string }).token;
    const s = await call(b.url, 'POST', '/berth/v1/sessions', { body: { username: 'alice', password: alicePassword } });
    const cookie = /berth_session=[^;]+/.exec(s.headers.get('set-cookie')!)![0];
    const tokens = await call(b.url, 'GET', '/berth/v1/accounts/alice/tokens', { auth: basic('alice', alicePassword) });
    const revoke = await call(b.url, 'DELETE', `/berth/v1/accounts/alice/tokens/${tokens.json.items[0].id}`, { session: { cookie, csrf: s.json.csrfToken } });
    assert.equal(revoke.status, 204);
    await new Promise((r) => setTimeout(r, 1100));
  });
  after(() => b?.close());

  /** Every API request about repository `repo` (same-length names: alice/secret, alice/absent). */
  const requests = (repo: string): [string, string, RequestInit][] => {
    const json = (method: string, body: unknown): RequestInit => ({ method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return [
      ['get', `/berth/v1/repositories/${repo}`, {}],
      ['get, encoded', `/berth/v1/repositories/${repo.replace('/', '%2F')}`, {}],
      ['patch visibility', `/berth/v1/repositories/${repo}`, json('PATCH', { visibility: 'public' })],
      ['patch, bad body', `/berth/v1/repositories/${repo}`, json('PATCH', { visibility: 'open' })],
      ['delete', `/berth/v1/repositories/${repo}`, { method: 'DELETE' }],
      ['collaborators', `/berth/v1/repositories/${repo}/-/collaborators`, {}],
      ['put collaborator', `/berth/v1/repositories/${repo}/-/collaborators/bob`, json('PUT', { permission: 'admin' })],
      ['delete collaborator', `/berth/v1/repositories/${repo}/-/collaborators/bob`, { method: 'DELETE' }],
      ['post (not allowed)', `/berth/v1/repositories/${repo}`, json('POST', {})],
      ['list by namespace', `/berth/v1/repositories?namespace=alice`, {}],
    ];
  };

  const callers: [string, () => typeof fetch][] = [
    ['anonymous', () => fetch],
    ['another user (Basic)', () => withBasic('bob', bobPassword)],
    [
      'another user (session)',
      () => {
        let session: Session | undefined;
        return async (u, init = {}) => {
          if (!session) {
            const s = await call(b.url, 'POST', '/berth/v1/sessions', { body: { username: 'bob', password: bobPassword } });
            session = { cookie: /berth_session=[^;]+/.exec(s.headers.get('set-cookie')!)![0], csrf: s.json.csrfToken };
          }
          return fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Cookie: session.cookie, 'X-CSRF-Token': session.csrf } });
        };
      },
    ],
    ['a revoked personal access token (Basic)', () => withBasic('alice', revokedPat)],
    ['a token issued through a revoked personal access token (Bearer)', () => (u, init = {}) => fetch(u, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${revokedBearer}` } })],
  ];

  for (const [who, make] of callers) {
    it(`${who}: every API request answers alice/secret byte for byte as alice/absent`, async () => {
      const f = make();
      const secret = requests('alice/secret');
      const absent = requests('alice/absent');
      for (let i = 0; i < secret.length; i++) {
        const [what, p, init] = secret[i]!;
        const a = await seen(await f(`${b.url}${p}`, init), 'alice/secret');
        const m = await seen(await f(`${b.url}${absent[i]![1]}`, absent[i]![2]), 'alice/absent');
        assert.equal(a, m, `${what}: private and missing differ`);
        if (what === 'list by namespace') assert.ok(!a.includes('secret'), `${what}: lists the private repository`);
      }
      // Nothing changed: still private, no collaborator.
      assert.equal(await b.hub.repositories.visibility('alice/secret'), 'private');
      assert.deepEqual(await b.hub.repositories.collaborators('alice/secret'), []);
      assert.deepEqual((await b.hub.repositories.collaborators('alice/absent')).length, 0);
      assert.deepEqual(await b.store.collection.repositoryUsage('alice/secret').then((u) => u?.tags), 1);
    });
  }
});

describe('the served OpenAPI document is what the server routes', () => {
  /** A concrete path for a documented template. */
  const concrete = (template: string) =>
    template
      .replace('{name}', template.startsWith('/berth/v1/repositories/') ? 'alice/app' : 'alice')
      .replace('{org}', 'acme')
      .replace('{user}', 'bob')
      .replace('{team}', 'readers')
      .replace('{robot}', 'ci')
      .replace('{id}', '1');
  const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

  /** Every documented (path, method) is routed; every other method on a documented path is 405. */
  async function checkRoutes(base: string, auth?: string): Promise<{ paths: string[]; ids: string[] }> {
    const res = await fetch(`${base}/berth/v1/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { operationId: string; requestBody?: unknown }>> };
    assert.match(doc.openapi, /^3\.1\./);
    const ids: string[] = [];
    for (const [template, item] of Object.entries(doc.paths)) {
      const p = concrete(template);
      for (const method of METHODS) {
        const op = item[method.toLowerCase()];
        const r = await call(base, method, p, { auth, ...(op?.requestBody ? { body: {} } : {}) });
        const where = `${method} ${p} (${op?.operationId ?? 'undocumented'}): ${r.status} ${r.text.slice(0, 200)}`;
        const unknownPath = r.status === 404 && /no such API endpoint/.test(r.text);
        assert.ok(!unknownPath, where);
        if (op) {
          ids.push(op.operationId);
          assert.notEqual(r.status, 405, where);
        } else {
          assert.equal(r.status, 405, where);
          assert.ok(r.headers.get('allow'), where);
        }
      }
    }
    return { paths: Object.keys(doc.paths), ids };
  }

  it('with accounts on: the Hub API and the older routes, each routed', async () => {
    const b = await startAccountsBerth();
    try {
      const { paths, ids } = await checkRoutes(b.url);
      assert.ok(ids.includes('login') && ids.includes('listAudit') && ids.includes('startGarbageCollection'), ids.join(' '));
      assert.ok(paths.length >= 20);
      // A path no operation has is the unknown-endpoint 404.
      const unknown = await call(b.url, 'GET', '/berth/v1/nothing-here');
      assert.equal(unknown.status, 404);
      assert.match(unknown.text, /no such API endpoint/);
    } finally {
      await b.close();
    }
  });

  it("with accounts off: the registry's own routes and the Hub's reading ones; the Hub's other paths are unknown", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-api-off-'));
    const port = await freePort();
    let proc: BerthProcess | undefined;
    try {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))) as Record<string, string>;
      proc = await spawnBerth(port, { ...env, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: dir, REGISTRY_STORAGE_DELETE_ENABLED: 'true' });
      const { ids } = await checkRoutes(proc.url);
      // The Hub's getRepository answers the registry's own GET of a repository (getRepositoryUsage), with more.
      assert.deepEqual(ids.sort(), [
        'deleteRepository',
        'getGarbageCollection',
        'getOpenApi',
        'getRepository',
        'getRepositoryManifest',
        'getStorageUsage',
        'listNamespaceActivity',
        'listRepositories',
        'listRepositoryActivity',
        'listRepositoryTags',
        'searchRepositories',
        'startGarbageCollection',
      ]);
      for (const [method, p] of [
        ['GET', '/berth/v1/accounts'],
        ['POST', '/berth/v1/sessions'],
        ['GET', '/berth/v1/me'],
        ['GET', '/berth/v1/orgs/acme'],
        ['GET', '/berth/v1/audit'],
        ['GET', '/berth/v1/me/feed'],
      ] as const) {
        const r = await call(proc.url, method, p, method === 'POST' ? { body: {} } : {});
        assert.equal(r.status, 404, `${method} ${p}`);
        assert.equal(r.json.errors[0].code, 'UNSUPPORTED');
      }
    } finally {
      await proc?.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
