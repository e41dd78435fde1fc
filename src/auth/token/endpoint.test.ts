import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { GrantedAccess, Principal } from '../../access/types.js';
import { SigningKeyQueries } from '../../metadata/keys.js';
import { MetadataStore } from '../../metadata/store.js';
import { TokenEndpoint, type TokenEvent, type TokenRequest } from './endpoint.js';
import { KeyRing } from './keys.js';
import { TokenIssuer, TokenVerifier } from './tokens.js';
import type { AccessGranter, CredentialVerifier, RefreshTokens } from './types.js';

/** In-test stand-ins for the Hub's implementations of the contract. */
export class FakeCredentials implements CredentialVerifier {
  users = new Map<string, { secret: string; principal: Principal }>([
    ['alice', { secret: 's3cret!', principal: { kind: 'user', id: 1, name: 'alice', admin: false } }],
    ['bob', { secret: 'hunter2', principal: { kind: 'user', id: 2, name: 'bob', admin: false } }],
  ]);
  calls: { username: string; client: string }[] = [];
  async verify(username: string, secret: string, client: string): Promise<Principal | null> {
    this.calls.push({ username, client });
    const u = this.users.get(username);
    return u && u.secret === secret ? u.principal : null;
  }
}

/** Public repositories are `public/*`: everyone pulls; a user pulls and pushes their own namespace. */
export class FakeGranter implements AccessGranter {
  async grant(principal: Principal, requested: GrantedAccess[]): Promise<GrantedAccess[]> {
    return requested.map((r) => {
      const allowed = new Set<string>();
      if (r.type === 'repository' && r.name.startsWith('public/')) allowed.add('pull');
      if ((principal.kind === 'user' || principal.kind === 'robot') && r.type === 'repository' && r.name.startsWith(`${principal.name}/`)) {
        allowed.add('pull').add('push');
      }
      return { ...r, actions: r.actions.filter((a) => allowed.has(a)) };
    });
  }
}

export class FakeRefreshTokens implements RefreshTokens {
  readonly tokens = new Map<string, { principal: Principal; clientId: string }>();
  async issue(principal: Principal, clientId: string): Promise<string> {
    const t = randomBytes(16).toString('hex');
    this.tokens.set(t, { principal, clientId });
    return t;
  }
  async redeem(token: string): Promise<Principal | null> {
    return this.tokens.get(token)?.principal ?? null;
  }
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('token endpoint', () => {
  let store: MetadataStore;
  let endpoint: TokenEndpoint;
  let verifier: TokenVerifier;
  let credentials: FakeCredentials;
  let refresh: FakeRefreshTokens;
  const events: TokenEvent[] = [];
  before(async () => {
    store = await MetadataStore.open({ sqlitePath: ':memory:' });
    const keys = await KeyRing.open(new SigningKeyQueries(store));
    credentials = new FakeCredentials();
    refresh = new FakeRefreshTokens();
    endpoint = new TokenEndpoint({
      service: 'registry.test',
      issuer: new TokenIssuer({ keys, issuer: 'berth', service: 'registry.test', lifetimeMs: 300_000 }),
      credentials,
      granter: new FakeGranter(),
      refreshTokens: refresh,
      onEvent: (e) => events.push(e),
    });
    verifier = new TokenVerifier({ keys, issuer: 'berth', service: 'registry.test' });
  });
  after(async () => {
    await store.close();
  });

  const get = (query: string, authorization?: string) => endpoint.handle({ method: 'GET', query: new URLSearchParams(query), authorization, client: '192.0.2.7' });
  const post = (form: Record<string, string>, contentType = 'application/x-www-form-urlencoded; charset=utf-8') =>
    endpoint.handle({ method: 'POST', query: new URLSearchParams(), body: new URLSearchParams(form).toString(), contentType, client: '192.0.2.8' });
  async function accessOf(token: unknown): Promise<{ access: GrantedAccess[]; holder: Principal }> {
    const r = await verifier.verify(token as string);
    assert.ok(r.ok, JSON.stringify(r));
    return { access: r.principal.access, holder: r.holder };
  }

  it('docker login: GET with Basic credentials, no scope, offline_token → a token with no access and a refresh token', async () => {
    const res = await get('account=alice&client_id=docker&offline_token=true&service=registry.test', basic('alice', 's3cret!'));
    assert.equal(res.status, 200);
    assert.equal(res.headers['Content-Type'], 'application/json');
    assert.equal(res.headers['Cache-Control'], 'no-store');
    const b = res.body;
    assert.equal(b.token, b.access_token);
    assert.equal(b.expires_in, 300);
    assert.match(b.issued_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(await accessOf(b.token), { access: [], holder: { kind: 'user', id: 1, name: 'alice', admin: false } });
    assert.equal(typeof b.refresh_token, 'string');
    assert.deepEqual(refresh.tokens.get(b.refresh_token as string), { principal: { kind: 'user', id: 1, name: 'alice', admin: false }, clientId: 'docker' });
    assert.deepEqual(credentials.calls.at(-1), { username: 'alice', client: '192.0.2.7' });
  });

  it('bad credentials: 401 with the error body the CLI prints, the same for an unknown user', async () => {
    const wrong = await get('service=registry.test&scope=repository:alice/app:pull', basic('alice', 'nope'));
    const unknown = await get('service=registry.test&scope=repository:alice/app:pull', basic('mallory', 'nope'));
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] });
    assert.deepEqual(unknown, wrong);
    assert.equal(wrong.headers['WWW-Authenticate'], 'Basic realm="registry.test"');
    const garbled = await get('service=registry.test', 'Basic !!!');
    assert.equal(garbled.status, 401);
    assert.deepEqual(garbled.body, wrong.body);
  });

  it('anonymous GET gets only what anonymous may (public pulls), however much it asks', async () => {
    const res = await get('service=registry.test&scope=repository:public/x:pull,push&scope=repository:alice/app:pull&offline_token=true');
    assert.equal(res.status, 200);
    assert.deepEqual((await accessOf(res.body.token)).access, [{ type: 'repository', name: 'public/x', actions: ['pull'] }]);
    assert.equal(res.body.refresh_token, undefined, 'no refresh token without credentials');
  });

  it('the granted access is the intersection of what was asked and what is allowed, over repeated scopes', async () => {
    const res = await get('service=registry.test&scope=repository:alice/app:pull&scope=repository:alice/app:push,delete&scope=repository:bob/x:pull', basic('alice', 's3cret!'));
    assert.equal(res.status, 200);
    assert.deepEqual((await accessOf(res.body.token)).access, [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }]);
    assert.equal(res.body.refresh_token, undefined, 'only with offline_token=true');
  });

  it('refuses another service, a malformed scope, an account that is not the user (without checking the credentials)', async () => {
    const calls = credentials.calls.length;
    const other = await get('service=elsewhere', basic('alice', 's3cret!'));
    assert.equal(other.status, 400);
    assert.match(JSON.stringify(other.body), /unknown service/);
    assert.equal((await get('service=registry.test&scope=repository:app')).status, 400);
    const mismatch = await get('account=bob&service=registry.test', basic('alice', 's3cret!'));
    assert.equal(mismatch.status, 400);
    assert.match(JSON.stringify(mismatch.body), /account parameter/);
    assert.equal(credentials.calls.length, calls);
    assert.equal((await get('', basic('alice', 's3cret!'))).status, 200, 'service may be left out');
  });

  it('POST grant_type=password as containerd sends it, access_type=offline, then grant_type=refresh_token', async () => {
    const res = await post({ scope: 'repository:alice/app:pull,push repository:public/x:pull', service: 'registry.test', client_id: 'containerd-client', grant_type: 'password', username: 'alice', password: 's3cret!', access_type: 'offline' });
    assert.equal(res.status, 200);
    assert.equal(res.body.scope, 'repository:alice/app:pull,push repository:public/x:pull');
    assert.deepEqual((await accessOf(res.body.access_token)).access, [
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'public/x', actions: ['pull'] },
    ]);
    const rt = res.body.refresh_token as string;
    assert.equal(refresh.tokens.get(rt)?.clientId, 'containerd-client');
    const again = await post({ grant_type: 'refresh_token', refresh_token: rt, service: 'registry.test', client_id: 'docker', scope: 'repository:alice/app:push' });
    assert.equal(again.status, 200);
    const { access, holder } = await accessOf(again.body.access_token);
    assert.deepEqual(access, [{ type: 'repository', name: 'alice/app', actions: ['push'] }]);
    assert.equal(holder.kind === 'user' && holder.name, 'alice');
    assert.equal(again.body.refresh_token, undefined);
    // containerd leaves scope empty when it has none.
    assert.equal((await post({ scope: '', service: 'registry.test', client_id: 'containerd-client', grant_type: 'password', username: 'bob', password: 'hunter2' })).status, 200);
  });

  it('POST failures: 401 invalid_grant for wrong credentials or refresh token, 400 for the rest', async () => {
    const wrong = await post({ grant_type: 'password', username: 'alice', password: 'x', service: 'registry.test', client_id: 'c' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }], error: 'invalid_grant', error_description: 'incorrect username or password' });
    const badRefresh = await post({ grant_type: 'refresh_token', refresh_token: 'nope', service: 'registry.test', client_id: 'c' });
    assert.equal(badRefresh.status, 401);
    assert.equal(badRefresh.body.error, 'invalid_grant');
    assert.equal((await post({ grant_type: 'authorization_code', code: 'x' })).body.error, 'unsupported_grant_type');
    assert.equal((await post({ grant_type: 'password', username: 'alice' })).status, 400);
    assert.equal((await post({ username: 'alice', password: 's3cret!' })).status, 400);
    assert.equal((await post({ grant_type: 'refresh_token' })).status, 400);
    const json = await endpoint.handle({ method: 'POST', query: new URLSearchParams(), body: '{"grant_type":"password"}', contentType: 'application/json', client: 'x' });
    assert.equal(json.status, 400);
    assert.equal((await post({ grant_type: 'password', username: 'alice', password: 's3cret!', scope: 'bad' })).body.error, 'invalid_scope');
  });

  it('other methods: 405 with Allow', async () => {
    const res = await endpoint.handle({ method: 'PUT', query: new URLSearchParams(), client: 'x' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.Allow, 'GET, POST');
  });

  it('reports what it did, never a secret', () => {
    const text = JSON.stringify(events);
    assert.ok(events.some((e) => e.outcome === 'issued' && e.grant === 'basic' && e.refreshToken && e.clientId === 'docker'));
    assert.ok(events.some((e) => e.outcome === 'refused' && e.grant === 'password' && e.username === 'alice'));
    assert.ok(!text.includes('s3cret!') && !text.includes('hunter2'));
  });
});
