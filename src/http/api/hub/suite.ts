/**
 * The JSON API's suite, run on every metadata engine (sqlite.test.ts,
 * postgres.test.ts): handlers called directly with an ApiRequest against a
 * Hub on a real database, as the edge will call them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Principal } from '../../../access/types.js';
import { CLI, createHub, type Hub } from '../../../hub/index.js';
import type { MetadataStore } from '../../../metadata/store.js';
import { runDiscoveryApiTests } from './discovery-tests.js';
import { createHubApi, type ApiRequest, type ApiResponse, type HubApi } from './index.js';
import type { ApiEngine, Call } from './suite-types.js';

export type { ApiEngine, Call } from './suite-types.js';

const PASSWORD = 'correct horse battery';
const digest = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

type Errors = { errors: { code: string; message: string; detail?: unknown }[] };
const errorOf = (r: ApiResponse) => (r.body as Errors).errors[0]!;

export function runApiSuite(engine: string, makeEngine: () => Promise<ApiEngine>): void {
  describe(`hub API (${engine})`, () => {
    let e: ApiEngine;
    let hub: Hub;
    let api: HubApi;
    let requests = 0;
    const who: Record<string, Principal> = {};

    const call = (method: string, target: string, c: Call = {}): Promise<ApiResponse> => {
      const q = target.indexOf('?');
      const path = q < 0 ? target : target.slice(0, q);
      const body = c.rawBody !== undefined ? Buffer.from(c.rawBody) : c.body === undefined ? undefined : Buffer.from(JSON.stringify(c.body));
      const headers: Record<string, string> = {};
      if (body) headers['content-type'] = c.contentType ?? 'application/json';
      if (c.cookie) headers.cookie = c.cookie;
      if (c.csrf) headers['x-csrf-token'] = c.csrf;
      const request: ApiRequest = {
        method,
        path,
        query: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)),
        headers,
        body,
        principal: c.principal ?? { kind: 'anonymous' },
        authorized: c.principal !== undefined && c.principal.kind !== 'anonymous',
        requestId: `req-${++requests}`,
        client: c.client ?? '192.0.2.1',
        tls: c.tls ?? false,
        prefix: '/',
      };
      return (c.via ?? api).handle(request);
    };
    const as = (name: string, rest: Omit<Call, 'principal'> = {}): Call => ({ ...rest, principal: who[name]! });

    before(async () => {
      e = await makeEngine();
      hub = createHub(e.store, { registration: 'open', loginLimits: { perAccount: 3, perClient: 1000, windowMs: 60_000 } });
      api = createHubApi({
        hub,
        store: e.store,
        deleteRepository: async (name) => {
          const r = await e.store.registry.deleteRepository(name);
          if (!r) throw new Error(`no repository ${name}`);
          return r;
        },
      });
      for (const [name, admin] of [['root-admin', true], ['alice', false], ['bob', false], ['carol', false], ['dave', false]] as const) {
        await hub.accounts.create({ name, password: PASSWORD, admin }, CLI);
        who[name] = (await hub.verifier.verify(name, PASSWORD, '10.0.0.1'))!;
      }
      // Repositories with a manifest (as the catalog lists them), and their visibility.
      for (const [name, visibility] of [
        ['alice/public', 'public'],
        ['alice/private', 'private'],
        ['alice/zz-private', 'private'],
        ['library/ubuntu', 'public'],
      ] as const) {
        await e.store.registry.putManifest(
          name,
          { digest: digest(name), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, artifactType: null, subjectDigest: null, annotations: null, blobs: [], manifests: [] },
          ['latest', 'v1'],
        );
        await hub.repositories.setVisibility(name, visibility, CLI);
      }
    });
    after(async () => {
      await e.store.close();
      await e.cleanup();
    });

    describe('accounts and validation', () => {
      it('registers when registration is open; a taken name is not available; the answer never holds a password hash', async () => {
        const r = await call('POST', 'berth/v1/accounts', { body: { name: 'erin', password: PASSWORD, email: 'erin@example.org' } });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        assert.deepEqual(Object.keys(r.body as object).sort(), ['admin', 'createdAt', 'disabled', 'email', 'kind', 'name']);
        const again = await call('POST', 'berth/v1/accounts', { body: { name: 'erin', password: PASSWORD } });
        assert.equal(again.status, 409);
        assert.equal(errorOf(again).code, 'NAME_TAKEN');
        const admin = await call('POST', 'berth/v1/accounts', { body: { name: 'mallory', password: PASSWORD, admin: true } });
        assert.equal(admin.status, 403);
        assert.equal(await hub.accounts.get('mallory'), null);
        const byAdmin = await call('POST', 'berth/v1/accounts', as('root-admin', { body: { name: 'ops2', password: PASSWORD, admin: true } }));
        assert.equal(byAdmin.status, 201);
        assert.equal((byAdmin.body as { admin: boolean }).admin, true);
      });

      it('refuses a bad body with 400 and a message naming the field', async () => {
        let r = await call('POST', 'berth/v1/accounts', { body: { name: 'frank', password: 'short' } });
        assert.equal(r.status, 400);
        assert.equal(errorOf(r).code, 'INVALID');
        assert.match(errorOf(r).message, /^body\.password: /);
        r = await call('POST', 'berth/v1/accounts', { body: { name: 'frank', password: PASSWORD, pasword: 'x' } });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.pasword: unknown field/);
        r = await call('POST', 'berth/v1/accounts', { body: { name: 'Frank!', password: PASSWORD } });
        assert.equal(r.status, 400);
        assert.equal(errorOf(r).code, 'NAME_INVALID');
        r = await call('POST', 'berth/v1/accounts', { rawBody: '{"name":', contentType: 'application/json' });
        assert.equal(r.status, 400);
        assert.equal(errorOf(r).message, 'body: not valid JSON');
        r = await call('POST', 'berth/v1/accounts', { rawBody: 'name=frank', contentType: 'application/x-www-form-urlencoded' });
        assert.equal(r.status, 415);
        r = await call('GET', 'berth/v1/accounts?n=0', as('root-admin'));
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^query\.n: /);
        r = await call('GET', 'berth/v1/accounts?limit=5', as('root-admin'));
        assert.match(errorOf(r).message, /^query\.limit: unknown field/);
        r = await call('GET', 'berth/v1/orgs/Not_A_Name', as('alice'));
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^path\.org: /);
        r = await call('PUT', 'berth/v1/me', as('alice'));
        assert.equal(r.status, 405);
        assert.equal(r.headers.Allow, 'GET');
      });

      it('shows an account to itself and to administrators; to anyone else it is missing', async () => {
        assert.equal((await call('GET', 'berth/v1/accounts/alice', as('alice'))).status, 200);
        assert.equal((await call('GET', 'berth/v1/accounts/alice', as('root-admin'))).status, 200);
        const other = await call('GET', 'berth/v1/accounts/alice', as('bob'));
        const missing = await call('GET', 'berth/v1/accounts/nobody', as('bob'));
        assert.equal(other.status, 404);
        assert.deepEqual(JSON.stringify(other.body).replace('alice', 'X'), JSON.stringify(missing.body).replace('nobody', 'X'));
        assert.equal((await call('GET', 'berth/v1/accounts/alice')).status, 401);
        assert.equal((await call('GET', 'berth/v1/accounts', as('alice'))).status, 403);
      });

      it('lists accounts for administrators, a page at a time with a Link to the next', async () => {
        const first = await call('GET', 'berth/v1/accounts?n=2&kind=user', as('root-admin'));
        assert.equal(first.status, 200);
        const page = first.body as { items: { name: string }[]; next: string };
        assert.deepEqual(page.items.map((a) => a.name), ['alice', 'bob']);
        assert.equal(page.next, 'bob');
        assert.equal(first.headers.Link, '</berth/v1/accounts?n=2&kind=user&last=bob>; rel="next"');
        const second = await call('GET', 'berth/v1/accounts?n=2&kind=user&last=bob', as('root-admin'));
        assert.deepEqual((second.body as { items: { name: string }[] }).items.map((a) => a.name), ['carol', 'dave']);
      });

      it('changes a password only with the current one, rate-limited, and ends the sessions', async () => {
        await hub.accounts.create({ name: 'gina', password: PASSWORD }, CLI);
        const gina = (await hub.verifier.verify('gina', PASSWORD, '10.0.0.1'))!;
        const login = await call('POST', 'berth/v1/sessions', { body: { username: 'gina', password: PASSWORD } });
        const cookie = `berth_session=${login.cookies[0]!.value}`;
        let r = await call('PUT', 'berth/v1/accounts/gina/password', { principal: gina, body: { password: 'new password 1' } });
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.current: /);
        r = await call('PUT', 'berth/v1/accounts/gina/password', { principal: gina, body: { current: 'wrong', password: 'new password 1' } });
        assert.equal(r.status, 403);
        assert.equal(errorOf(r).code, 'WRONG_PASSWORD');
        r = await call('PUT', 'berth/v1/accounts/gina/password', { principal: gina, body: { current: PASSWORD, password: 'new password 1' } });
        assert.equal(r.status, 204);
        assert.equal((await call('GET', 'berth/v1/me', { cookie })).status, 401, 'the session ended with the password change');
        // Another user's password: only an administrator, without the current one.
        assert.equal((await call('PUT', 'berth/v1/accounts/gina/password', as('bob', { body: { password: 'new password 2' } }))).status, 404);
        assert.equal((await call('PUT', 'berth/v1/accounts/gina/password', as('root-admin', { body: { password: 'new password 2' } }))).status, 204);
        // Guessing the current password is limited like a login: after 3 failures even the right one is refused alike.
        for (let i = 0; i < 3; i++) assert.equal((await call('PUT', 'berth/v1/accounts/gina/password', { principal: gina, body: { current: `guess ${i}`, password: 'new password 3' } })).status, 403);
        const limited = await call('PUT', 'berth/v1/accounts/gina/password', { principal: gina, body: { current: 'new password 2', password: 'new password 3' } });
        assert.equal(limited.status, 403);
        assert.deepEqual(limited.body, { errors: [{ code: 'WRONG_PASSWORD', message: 'the current password is wrong' }] });
        const audit = await call('GET', 'berth/v1/audit?action=account.password.failed&actor=gina', as('root-admin'));
        assert.equal((audit.body as { items: unknown[] }).items.length, 5);
      });

      it('a personal access token cannot manage the account', async () => {
        const t = await hub.tokens.create('alice', { name: 'ci', scopes: ['read', 'write', 'delete'] }, CLI);
        const withToken = (await hub.verifier.verify('alice', t.secret, '10.0.0.1'))!;
        for (const [method, path, body] of [
          ['PUT', 'berth/v1/accounts/alice/password', { current: PASSWORD, password: 'another password' }],
          ['POST', 'berth/v1/accounts/alice/tokens', { name: 'more', scopes: ['delete'] }],
          ['DELETE', 'berth/v1/accounts/alice', undefined],
          // Not even another token of the account's (a leaked read token would cut off its CI's).
          ['DELETE', `berth/v1/accounts/alice/tokens/${t.id}`, undefined],
        ] as const) {
          const r = await call(method, path, { principal: withToken, body });
          assert.equal(r.status, 403, `${method} ${path}`);
          assert.equal(errorOf(r).code, 'DENIED');
        }
        assert.equal((await call('GET', 'berth/v1/me', { principal: withToken })).status, 200);
      });
    });

    describe('sessions', () => {
      it('logs in with a cookie and a CSRF token; state changes need the token; logging out ends it', async () => {
        const login = await call('POST', 'berth/v1/sessions', { body: { username: 'carol', password: PASSWORD }, tls: true });
        assert.equal(login.status, 201, JSON.stringify(login.body));
        const c = login.cookies[0]!;
        assert.equal(c.name, 'berth_session');
        assert.match(c.value, /^bses_[A-Za-z0-9_-]{43}$/);
        assert.deepEqual({ httpOnly: c.httpOnly, secure: c.secure, sameSite: c.sameSite, path: c.path }, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/berth/' });
        const { csrfToken } = login.body as { csrfToken: string };
        const cookie = `other=1; berth_session=${c.value}`;
        const me = await call('GET', 'berth/v1/me', { cookie });
        assert.equal(me.status, 200);
        assert.deepEqual([(me.body as { name: string }).name, (me.body as { authenticatedBy: string }).authenticatedBy], ['carol', 'session']);
        assert.equal(((await call('GET', 'berth/v1/sessions/current', { cookie })).body as { csrfToken: string }).csrfToken, csrfToken);

        let r = await call('POST', 'berth/v1/orgs', { cookie, body: { name: 'csrf-org' } });
        assert.equal(r.status, 403);
        assert.match(errorOf(r).message, /X-CSRF-Token/);
        r = await call('POST', 'berth/v1/orgs', { cookie, csrf: `${csrfToken.slice(0, -2)}xx`, body: { name: 'csrf-org' } });
        assert.equal(r.status, 403);
        assert.equal(await hub.accounts.get('csrf-org'), null);
        r = await call('POST', 'berth/v1/orgs', { cookie, csrf: csrfToken, body: { name: 'csrf-org' } });
        assert.equal(r.status, 201);

        assert.equal((await call('DELETE', 'berth/v1/sessions/current', { cookie })).status, 403, 'logging out by cookie needs the token too');
        r = await call('DELETE', 'berth/v1/sessions/current', { cookie, csrf: csrfToken });
        assert.equal(r.status, 204);
        assert.equal(r.cookies[0]!.maxAge, 0);
        assert.equal((await call('GET', 'berth/v1/me', { cookie })).status, 401);
      });

      it('answers a wrong password, an unknown user and a rate-limited login alike', async () => {
        const wrong = await call('POST', 'berth/v1/sessions', { body: { username: 'dave', password: 'not it' } });
        const unknown = await call('POST', 'berth/v1/sessions', { body: { username: 'nobody-at-all', password: 'not it' } });
        assert.equal(wrong.status, 401);
        assert.deepEqual(unknown, wrong);
        await call('POST', 'berth/v1/sessions', { body: { username: 'dave', password: 'not it 2' } });
        await call('POST', 'berth/v1/sessions', { body: { username: 'dave', password: 'not it 3' } });
        const limited = await call('POST', 'berth/v1/sessions', { body: { username: 'dave', password: PASSWORD } });
        assert.deepEqual(limited, wrong, 'the right password is refused alike once the account is limited');
        assert.equal(limited.cookies.length, 0);
        const log = await call('GET', 'berth/v1/audit?actor=dave&action=login.failed', as('root-admin'));
        const entries = (log.body as { items: { detail: { with: string }; requestId: string; client: string }[] }).items;
        assert.equal(entries[0]!.detail.with, 'rate limited');
        assert.match(entries[0]!.requestId, /^req-\d+$/);
        assert.equal(entries[0]!.client, '192.0.2.1');
      });
    });

    describe('personal access tokens', () => {
      it('creates (the secret once), lists, pages and revokes; another user\'s are invisible', async () => {
        const created = await call('POST', 'berth/v1/accounts/bob/tokens', as('bob', { body: { name: 'ci', scopes: ['read'], expiresIn: '30d' } }));
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const t = created.body as { id: number; secret: string; expiresAt: number };
        assert.match(t.secret, /^bpat_/);
        assert.ok(t.expiresAt > Date.now() + 29 * 86_400_000);
        await call('POST', 'berth/v1/accounts/bob/tokens', as('bob', { body: { name: 'second', scopes: ['write'] } }));
        const list = await call('GET', 'berth/v1/accounts/bob/tokens?n=1', as('bob'));
        assert.equal(list.status, 200);
        assert.ok(!JSON.stringify(list.body).includes('bpat_'), 'no secret in a listing');
        assert.equal((list.body as { next: string }).next, String(t.id));
        assert.match(list.headers.Link!, /last=\d+>; rel="next"$/);
        const theirs = await call('GET', 'berth/v1/accounts/bob/tokens', as('alice'));
        const nobody = await call('GET', 'berth/v1/accounts/nobody/tokens', as('alice'));
        assert.equal(theirs.status, 404);
        assert.equal(JSON.stringify(theirs.body).replace('bob', 'X'), JSON.stringify(nobody.body).replace('nobody', 'X'));
        assert.equal((await call('DELETE', `berth/v1/accounts/bob/tokens/${t.id}`, as('alice'))).status, 404);
        assert.equal((await call('DELETE', `berth/v1/accounts/bob/tokens/${t.id}`, as('bob'))).status, 204);
        assert.equal(await hub.verifier.verify('bob', t.secret, '10.0.0.2'), null);
        assert.equal((await call('DELETE', `berth/v1/accounts/bob/tokens/${t.id}`, as('bob'))).status, 404, 'revoked already');
        assert.equal((await call('DELETE', 'berth/v1/accounts/bob/tokens/abc', as('bob'))).status, 400);
      });
    });

    describe('organizations, members, teams, robots', () => {
      before(async () => {
        const r = await call('POST', 'berth/v1/orgs', as('alice', { body: { name: 'acme' } }));
        assert.equal(r.status, 201, JSON.stringify(r.body));
      });

      it('hides an organization from non-members exactly as a missing one', async () => {
        for (const path of ['orgs/acme', 'orgs/acme/teams', 'orgs/acme/members', 'orgs/acme/teams/owners']) {
          const r = await call('GET', `berth/v1/${path}`, as('bob'));
          const missing = await call('GET', `berth/v1/${path.replace('acme', 'nope')}`, as('bob'));
          assert.equal(r.status, 404, path);
          assert.equal(JSON.stringify(r.body).replace('acme', 'X'), JSON.stringify(missing.body).replace('nope', 'X'), path);
        }
        assert.deepEqual((await call('GET', 'berth/v1/orgs/acme', as('alice'))).body, { name: 'acme', role: 'owner' });
        assert.deepEqual((await call('GET', 'berth/v1/orgs/acme', as('root-admin'))).body, { name: 'acme', role: 'owner' });
      });

      it('owners manage members and teams; members read; the last owner cannot leave', async () => {
        assert.equal((await call('PUT', 'berth/v1/orgs/acme/members/bob', as('alice'))).status, 204);
        assert.deepEqual((await call('GET', 'berth/v1/orgs', as('bob'))).body, { items: [{ name: 'acme', role: 'member' }], next: null });
        const members = await call('GET', 'berth/v1/orgs/acme/members', as('bob'));
        assert.deepEqual((members.body as { items: unknown[] }).items, [
          { name: 'alice', owner: true },
          { name: 'bob', owner: false },
        ]);
        assert.equal((await call('POST', 'berth/v1/orgs/acme/teams', as('bob', { body: { name: 'devs' } }))).status, 403);
        assert.equal((await call('POST', 'berth/v1/orgs/acme/teams', as('alice', { body: { name: 'devs' } }))).status, 201);
        assert.equal((await call('POST', 'berth/v1/orgs/acme/teams', as('alice', { body: { name: 'devs' } }))).status, 409);
        assert.equal((await call('PUT', 'berth/v1/orgs/acme/teams/devs/members/carol', as('alice'))).status, 204);
        let r = await call('PUT', 'berth/v1/orgs/acme/teams/devs/permissions', as('alice', { body: { repository: 'acme/api', permission: 'write' } }));
        assert.equal(r.status, 204);
        r = await call('PUT', 'berth/v1/orgs/acme/teams/devs/permissions', as('alice', { body: { repository: 'other/api', permission: 'write' } }));
        assert.equal(r.status, 400);
        r = await call('PUT', 'berth/v1/orgs/acme/teams/devs/permissions', as('alice', { body: { repository: 'acme/api', permission: 'owner' } }));
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.permission: /);
        // A name is checked before it reaches a query.
        for (const repository of ['acme/API', 'acme//api', 'acme/api/', '../acme']) {
          r = await call('PUT', 'berth/v1/orgs/acme/teams/devs/permissions', as('alice', { body: { repository, permission: 'write' } }));
          assert.equal(r.status, 400, repository);
          assert.match(errorOf(r).message, /^body\.repository: /);
        }
        assert.deepEqual((await call('GET', 'berth/v1/orgs/acme/teams/devs', as('carol'))).body, { name: 'devs', members: ['carol'], permissions: [{ repository: 'acme/api', permission: 'write' }] });

        r = await call('DELETE', 'berth/v1/orgs/acme/members/alice', as('alice'));
        assert.equal(r.status, 409);
        assert.equal(errorOf(r).code, 'LAST_OWNER');
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/members/carol', as('bob'))).status, 403, 'a member does not remove others');
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/members/carol', as('carol'))).status, 204, 'a member leaves');
        assert.deepEqual((await call('GET', 'berth/v1/orgs/acme/teams/devs/members', as('alice'))).body, { items: [], next: null });
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/teams/owners', as('alice'))).status, 400);
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/teams/devs', as('alice'))).status, 204);
      });

      it('creates robots with permissions and an expiry (the secret once), lists them to owners, revokes them', async () => {
        let r = await call('POST', 'berth/v1/orgs/acme/robots', as('alice', { body: { name: 'ci', expiresIn: '1h', permissions: [{ repository: 'acme/api', permission: 'write' }] } }));
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const robot = r.body as { login: string; secret: string; expiresAt: number; permissions: unknown };
        assert.equal(robot.login, 'acme+ci');
        assert.match(robot.secret, /^brob_/);
        assert.deepEqual(robot.permissions, [{ repository: 'acme/api', permission: 'write' }]);
        const p = await hub.verifier.verify('acme+ci', robot.secret, '10.0.0.3');
        assert.equal(p?.kind, 'robot');
        r = await call('POST', 'berth/v1/orgs/acme/robots', as('alice', { body: { name: 'bad', permissions: [{ repository: 'bob/app', permission: 'read' }] } }));
        assert.equal(r.status, 400);
        assert.equal((await call('GET', 'berth/v1/orgs/acme/robots', as('bob'))).status, 403, 'members do not see robots');
        const list = await call('GET', 'berth/v1/orgs/acme/robots', as('alice'));
        assert.ok(!JSON.stringify(list.body).includes('brob_'));
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/robots/ci', as('alice'))).status, 204);
        assert.equal(await hub.verifier.verify('acme+ci', robot.secret, '10.0.0.3'), null);
        const after = (await call('GET', 'berth/v1/orgs/acme/robots', as('alice'))).body as { items: { login: string; disabled: boolean }[] };
        assert.deepEqual(after.items.map((x) => [x.login, x.disabled]), [['acme+ci', true]]);
        assert.equal((await call('DELETE', 'berth/v1/orgs/acme/robots/ci?purge=true', as('alice'))).status, 204);
        assert.deepEqual((await call('GET', 'berth/v1/orgs/acme/robots', as('alice'))).body, { items: [], next: null });
      });
    });

    describe('repositories', () => {
      const names = (r: ApiResponse) => (r.body as { items: { name: string }[] }).items.map((x) => x.name);

      it('lists what the caller may read, filtered in the query and paginated', async () => {
        assert.deepEqual(names(await call('GET', 'berth/v1/repositories')), ['alice/public', 'library/ubuntu']);
        assert.deepEqual(names(await call('GET', 'berth/v1/repositories', as('bob'))), ['alice/public', 'library/ubuntu']);
        assert.deepEqual(names(await call('GET', 'berth/v1/repositories', as('alice'))), ['alice/private', 'alice/public', 'alice/zz-private', 'library/ubuntu']);
        // A full page even when unreadable names lie between (bob's first page skips alice/private).
        const first = await call('GET', 'berth/v1/repositories?n=1', as('bob'));
        assert.deepEqual(names(first), ['alice/public']);
        assert.equal(first.headers.Link, '</berth/v1/repositories?n=1&last=alice%2Fpublic>; rel="next"');
        const second = await call('GET', 'berth/v1/repositories?n=1&last=alice%2Fpublic', as('bob'));
        assert.deepEqual(names(second), ['library/ubuntu']);
        assert.equal(second.headers.Link, undefined);
        assert.deepEqual(names(await call('GET', 'berth/v1/repositories?namespace=alice', as('alice'))), ['alice/private', 'alice/public', 'alice/zz-private']);
        for (const namespace of ['Alice', 'alice/private', '..', '%00']) {
          const bad = await call('GET', `berth/v1/repositories?namespace=${encodeURIComponent(namespace)}`, as('alice'));
          assert.equal(bad.status, 400, namespace);
          assert.match(errorOf(bad).message, /^query\.namespace: not a valid namespace/);
        }
        const one = (await call('GET', 'berth/v1/repositories?namespace=library')).body as { items: unknown[] };
        assert.deepEqual(one.items, [{ name: 'library/ubuntu', visibility: 'public', tags: 2, createdAt: (one.items[0] as { createdAt: number }).createdAt }]);
      });

      it('answers a private repository exactly as a missing one to whoever may not read it', async () => {
        for (const principal of [undefined, 'bob'] as const) {
          const c = principal ? as(principal) : {};
          const hidden = await call('GET', 'berth/v1/repositories/alice/private', c);
          const missing = await call('GET', 'berth/v1/repositories/alice/missing', c);
          assert.equal(hidden.status, 404);
          assert.equal(errorOf(hidden).code, 'NAME_UNKNOWN');
          assert.equal(JSON.stringify(hidden).replace('alice/private', 'X'), JSON.stringify(missing).replace('alice/missing', 'X'));
          for (const [method, path, body] of [
            ['PATCH', 'berth/v1/repositories/alice/private', { visibility: 'public' }],
            ['DELETE', 'berth/v1/repositories/alice/private', undefined],
            ['GET', 'berth/v1/repositories/alice/private/-/collaborators', undefined],
          ] as const) {
            const r = await call(method, path, { ...c, body });
            assert.ok(r.status === 404 || (principal === undefined && r.status === 401), `${method} ${path}: ${r.status}`);
          }
        }
        const mine = await call('GET', 'berth/v1/repositories/alice%2Fprivate', as('alice'));
        assert.equal(mine.status, 200);
        assert.deepEqual(mine.body, {
          name: 'alice/private',
          namespace: 'alice',
          owner: { name: 'alice', kind: 'user' },
          visibility: 'private',
          createdAt: (mine.body as { createdAt: number }).createdAt,
          tags: 2,
          blobs: 1,
          sizeBytes: 10,
          permission: 'admin',
        });
        const ubuntu = await call('GET', 'berth/v1/repositories/ubuntu');
        assert.equal((ubuntu.body as { name: string; owner: unknown }).name, 'library/ubuntu', 'a one-component name is library/NAME');
      });

      it('sets visibility and collaborators with admin on the repository; audited', async () => {
        let r = await call('PATCH', 'berth/v1/repositories/alice/public', as('bob', { body: { visibility: 'private' } }));
        assert.equal(r.status, 403);
        r = await call('PATCH', 'berth/v1/repositories/alice/private', as('alice', { body: { visibility: 'hidden' } }));
        assert.equal(r.status, 400);
        assert.match(errorOf(r).message, /^body\.visibility: /);
        r = await call('PUT', 'berth/v1/repositories/alice/private/-/collaborators/bob', as('alice', { body: { permission: 'read' } }));
        assert.equal(r.status, 204);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/private', as('bob'))).status, 200);
        assert.deepEqual((await call('GET', 'berth/v1/repositories/alice/private/-/collaborators', as('alice'))).body, { items: [{ name: 'bob', permission: 'read' }], next: null });
        assert.equal((await call('GET', 'berth/v1/repositories/alice/private/-/collaborators', as('bob'))).status, 403);
        r = await call('DELETE', 'berth/v1/repositories/alice/private/-/collaborators/bob', as('alice'));
        assert.equal(r.status, 204);
        assert.equal((await call('GET', 'berth/v1/repositories/alice/private', as('bob'))).status, 404);

        r = await call('PATCH', 'berth/v1/repositories/alice/zz-private', as('alice', { body: { visibility: 'public' } }));
        assert.equal(r.status, 200);
        assert.equal((r.body as { visibility: string }).visibility, 'public');
        assert.equal((await call('GET', 'berth/v1/repositories/alice/zz-private')).status, 200);
        const log = (await call('GET', 'berth/v1/audit?action=repository.visibility&target=alice%2Fzz-private&actor=alice', as('root-admin'))).body as { items: { actor: string; requestId: string; client: string; detail: unknown }[] };
        assert.equal(log.items.length, 1);
        assert.deepEqual([log.items[0]!.actor, log.items[0]!.client, log.items[0]!.detail], ['alice', '192.0.2.1', { visibility: 'public' }]);
      });

      it('deletes through the registry, for admins of the repository only; a read token cannot', async () => {
        const t = await hub.tokens.create('alice', { name: 'read-only', scopes: ['read'] }, CLI);
        const readToken = (await hub.verifier.verify('alice', t.secret, '10.0.0.1'))!;
        let r = await call('DELETE', 'berth/v1/repositories/alice/public', { principal: readToken });
        assert.equal(r.status, 403);
        r = await call('DELETE', 'berth/v1/repositories/alice/public', as('bob'));
        assert.equal(r.status, 403);
        r = await call('DELETE', 'berth/v1/repositories/alice/public', as('alice'));
        assert.equal(r.status, 202);
        assert.deepEqual(r.body, { repository: 'alice/public', manifestsDeleted: 1, tagsDeleted: 2 });
        assert.equal((await call('GET', 'berth/v1/repositories/alice/public', as('alice'))).status, 404);
        const log = (await call('GET', 'berth/v1/audit?action=repository.delete', as('root-admin'))).body as { items: { target: string }[] };
        assert.deepEqual(log.items.map((x) => x.target), ['alice/public']);
      });
    });

    describe('audit log and invitations', () => {
      it('is for administrators, newest first, filtered by actor, action and time, paginated by id', async () => {
        assert.equal((await call('GET', 'berth/v1/audit', as('alice'))).status, 403);
        assert.equal((await call('GET', 'berth/v1/audit')).status, 401);
        const all = (await call('GET', 'berth/v1/audit?n=1000', as('root-admin'))).body as { items: { id: number; at: number; action: string }[] };
        assert.ok(all.items.length > 10);
        assert.ok(all.items.every((x, i) => i === 0 || all.items[i - 1]!.id > x.id), 'newest first');
        const page = await call('GET', 'berth/v1/audit?n=2', as('root-admin'));
        const ids = (page.body as { items: { id: number }[] }).items.map((x) => x.id);
        assert.deepEqual(ids, all.items.slice(0, 2).map((x) => x.id));
        const next = await call('GET', `berth/v1/audit?n=2&last=${ids[1]}`, as('root-admin'));
        assert.deepEqual((next.body as { items: { id: number }[] }).items.map((x) => x.id), all.items.slice(2, 4).map((x) => x.id));
        const future = new Date(Date.now() + 3_600_000).toISOString();
        assert.deepEqual((await call('GET', `berth/v1/audit?since=${future}`, as('root-admin'))).body, { items: [], next: null });
        const until = (await call('GET', `berth/v1/audit?until=${all.items.at(-1)!.at}`, as('root-admin'))).body as { items: unknown[] };
        assert.equal(until.items.length, 0);
        assert.equal((await call('GET', 'berth/v1/audit?since=yesterday', as('root-admin'))).status, 400);
        const tokens = (await call('GET', 'berth/v1/audit?action=token.create&actor=bob', as('root-admin'))).body as { items: { action: string; detail: Record<string, unknown> }[] };
        assert.equal(tokens.items.length, 2);
        assert.ok(!JSON.stringify(tokens).includes('bpat_'), 'no secret in the log');
      });

      it('creates invitations when registration is by invitation, for administrators and owners; a registration uses one', async () => {
        const inviteHub = createHub(e.store, { registration: 'invite' });
        const inviteApi = createHubApi({ hub: inviteHub, store: e.store, deleteRepository: async () => ({ manifests: 0, tags: 0 }) });
        const req = (method: string, path: string, principal: Principal, body?: unknown): Promise<ApiResponse> =>
          inviteApi.handle({ method, path, query: new URLSearchParams(), headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : Buffer.from(JSON.stringify(body)), principal, authorized: principal.kind !== 'anonymous', requestId: 'r', client: '192.0.2.9', tls: false, prefix: '/' });
        assert.equal((await call('POST', 'berth/v1/invitations', as('root-admin', { body: {} }))).status, 400, 'not by invitation on the open hub');
        assert.equal((await req('POST', 'berth/v1/invitations', who.bob!, {})).status, 403);
        assert.equal((await req('POST', 'berth/v1/invitations', who.bob!, { organization: 'acme' })).status, 403, 'a member is no owner');
        const byOwner = await req('POST', 'berth/v1/invitations', who.alice!, { organization: 'acme', email: 'new@example.org' });
        assert.equal(byOwner.status, 201);
        const code = (byOwner.body as { code: string }).code;
        assert.match(code, /^binv_/);
        let r = await req('POST', 'berth/v1/accounts', { kind: 'anonymous' }, { name: 'invited', password: PASSWORD });
        assert.equal(r.status, 403);
        assert.equal(errorOf(r).code, 'INVITATION_INVALID');
        r = await req('POST', 'berth/v1/accounts', { kind: 'anonymous' }, { name: 'invited', password: PASSWORD, invitation: code });
        assert.equal(r.status, 201);
        r = await req('POST', 'berth/v1/accounts', { kind: 'anonymous' }, { name: 'invited2', password: PASSWORD, invitation: code });
        assert.equal(r.status, 403, 'used up');
        assert.equal((await req('POST', 'berth/v1/invitations', who['root-admin']!, { expiresIn: '1d' })).status, 201);
      });

      it('deletes accounts: itself or by an administrator, refused while it owns repositories', async () => {
        let r = await call('DELETE', 'berth/v1/accounts/alice', as('root-admin'));
        assert.equal(r.status, 409);
        assert.equal(errorOf(r).code, 'ACCOUNT_IN_USE');
        assert.equal((await call('DELETE', 'berth/v1/accounts/erin', as('bob'))).status, 404);
        const erin = (await hub.verifier.verify('erin', PASSWORD, '10.0.0.1'))!;
        assert.equal((await call('DELETE', 'berth/v1/accounts/erin', { principal: erin })).status, 204);
        assert.equal(await hub.accounts.get('erin'), null);
        r = await call('DELETE', 'berth/v1/orgs/csrf-org', as('carol'));
        assert.equal(r.status, 204);
      });
    });

    runDiscoveryApiTests({ engine: () => e, hub: () => hub, api: () => api, who, call });

    it('serves its OpenAPI document without credentials', async () => {
      const r = await call('GET', 'berth/v1/openapi.json');
      assert.equal(r.status, 200);
      assert.equal((r.body as { openapi: string }).openapi, '3.1.0');
    });
  });
}
