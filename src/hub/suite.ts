/**
 * The Hub's suite, run on every metadata engine (sqlite.test.ts,
 * postgres.test.ts): the migration's tables and queries through the
 * services, the access table with facts loaded from the database, the
 * listing filter against that table, credentials, tokens, robots, refresh
 * tokens, invitations, the audit log and login limits shared across
 * processes (two store handles on one database).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { decide } from '../access/policy.js';
import type { Action, Principal } from '../access/types.js';
import type { MetadataOptions, MetadataStore } from '../metadata/store.js';
import { CLI, createHub, HubError, whereReadable, type Hub } from './index.js';

export interface HubEngine {
  store: MetadataStore;
  /** Another handle on the same database (as another process would have). */
  open(opts?: Omit<MetadataOptions, 'url' | 'sqlitePath'>): Promise<MetadataStore>;
  cleanup(): Promise<void>;
}

const ACTIONS: Action[] = ['pull', 'push', 'delete'];
const PASSWORD = 'correct horse battery';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<HubError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HubError, `expected a HubError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

export function runHubSuite(engine: string, makeEngine: () => Promise<HubEngine>): void {
  describe(`hub (${engine})`, () => {
    let e: HubEngine;
    let hub: Hub;
    const others: MetadataStore[] = [];
    before(async () => {
      e = await makeEngine();
      hub = createHub(e.store, { registration: 'open' });
    });
    after(async () => {
      for (const s of others) await s.close();
      await e.store.close();
      await e.cleanup();
    });
    const another = async (opts?: Omit<MetadataOptions, 'url' | 'sqlitePath'>) => {
      const s = await e.open(opts);
      others.push(s);
      return s;
    };

    describe('access table: identities × repositories × actions, facts from the database', () => {
      const R = {
        'alice/public': 'public',
        'alice/private': 'private',
        'alice/missing': null,
        'acme/api': 'private',
        'acme/web': 'public',
        'acme/missing': null,
        'library/ubuntu': 'public',
        'library/secret': 'private',
        'library/missing': null,
        solo: 'private',
        'nobody/thing': 'private',
      } as const;
      type Resource = keyof typeof R;
      const names = Object.keys(R) as Resource[];
      const who = new Map<string, Principal>();
      // Allowed actions per identity (r pull, w push, d delete); a resource not named allows nothing.
      const PUBLIC = { 'alice/public': 'r', 'acme/web': 'r', 'library/ubuntu': 'r' } as const;
      const expected: Record<string, Partial<Record<Resource, string>>> = {
        anonymous: PUBLIC,
        alice: { ...PUBLIC, 'alice/public': 'rwd', 'alice/private': 'rwd', 'alice/missing': 'rwd' },
        bob: PUBLIC,
        'carol (acme owner)': { ...PUBLIC, 'acme/api': 'rwd', 'acme/web': 'rwd', 'acme/missing': 'rwd' },
        'dave (team read on *)': { ...PUBLIC, 'acme/api': 'r', 'acme/missing': 'r' },
        'erin (team write on acme/api)': { ...PUBLIC, 'acme/api': 'rw' },
        'frank (team admin on *)': { ...PUBLIC, 'acme/api': 'rwd', 'acme/web': 'rwd', 'acme/missing': 'rwd' },
        'gina (collaborator write on alice/private)': { ...PUBLIC, 'alice/private': 'rw' },
        admin: Object.fromEntries(names.map((n) => [n, 'rwd'])),
        'robot acme+ci (write on acme/api and acme/missing)': { ...PUBLIC, 'acme/api': 'rw', 'acme/missing': 'rw' },
        'robot acme+idle (no permission)': PUBLIC,
        'robot acme+old (expired)': PUBLIC,
        'robot acme+off (disabled)': PUBLIC,
        'alice with a read token': { ...PUBLIC, 'alice/private': 'r', 'alice/missing': 'r' },
        'alice with a write token': { ...PUBLIC, 'alice/public': 'rw', 'alice/private': 'rw', 'alice/missing': 'rw' },
        'alice with a delete token': { ...PUBLIC, 'alice/public': 'rwd', 'alice/private': 'rwd', 'alice/missing': 'rwd' },
        'granted token (alice/private pull, acme/api push)': { 'alice/private': 'r', 'acme/api': 'w' },
        'htpasswd user (accounts on)': {},
      };

      before(async () => {
        const user = async (name: string, admin = false) => {
          await hub.accounts.create({ name, password: PASSWORD, admin }, CLI);
          return (await hub.verifier.verify(name, PASSWORD, '10.0.0.1'))!;
        };
        who.set('anonymous', { kind: 'anonymous' });
        who.set('alice', await user('alice'));
        who.set('bob', await user('bob'));
        who.set('carol (acme owner)', await user('carol'));
        const dave = await user('dave');
        const erin = await user('erin');
        const frank = await user('frank');
        const gina = await user('gina');
        who.set('dave (team read on *)', dave);
        who.set('erin (team write on acme/api)', erin);
        who.set('frank (team admin on *)', frank);
        who.set('gina (collaborator write on alice/private)', gina);
        who.set('admin', await user('root-admin', true));
        await hub.organizations.create('acme', 'carol', CLI);
        for (const [team, member, repo, perm] of [
          ['readers', 'dave', '*', 'read'],
          ['writers', 'erin', 'acme/api', 'write'],
          ['admins', 'frank', '*', 'admin'],
        ] as const) {
          await hub.organizations.createTeam('acme', team, CLI);
          await hub.organizations.addTeamMember('acme', team, member, CLI);
          await hub.organizations.setTeamPermission('acme', team, repo, perm, CLI);
        }
        // A team's row for a name that does not exist yet does not let it create the repository: only '*' or owners do.
        await hub.organizations.setTeamPermission('acme', 'writers', 'acme/missing', 'write', CLI);
        for (const [name, visibility] of Object.entries(R)) {
          if (visibility === null) continue;
          await e.store.registry.ensureRepository(name);
          await hub.repositories.setVisibility(name, visibility, CLI);
        }
        await hub.repositories.setCollaborator('alice/private', 'gina', 'write', CLI);
        const robot = async (name: string, permissions: { repository: string; permission: string }[], expiresInMs?: number) => {
          const r = await hub.robots.create('acme', { name, permissions, expiresInMs }, CLI);
          return (await hub.verifier.verify(r.login, r.secret, '10.0.0.2'))!;
        };
        who.set('robot acme+ci (write on acme/api and acme/missing)', await robot('ci', [{ repository: 'acme/api', permission: 'write' }, { repository: 'acme/missing', permission: 'write' }]));
        who.set('robot acme+idle (no permission)', await robot('idle', []));
        who.set('robot acme+old (expired)', await robot('old', [{ repository: 'acme/api', permission: 'write' }], 300));
        who.set('robot acme+off (disabled)', await robot('off', [{ repository: 'acme/api', permission: 'write' }]));
        await hub.robots.disable('acme', 'off', CLI);
        for (const scope of ['read', 'write', 'delete']) {
          const t = await hub.tokens.create('alice', { name: `${scope} token`, scopes: [scope] }, CLI);
          who.set(`alice with a ${scope} token`, (await hub.verifier.verify('alice', t.secret, '10.0.0.3'))!);
        }
        who.set('granted token (alice/private pull, acme/api push)', {
          kind: 'granted',
          subject: 'x',
          access: [
            { type: 'repository', name: 'alice/private', actions: ['pull'] },
            { type: 'repository', name: 'acme/api', actions: ['push'] },
          ],
        });
        who.set('htpasswd user (accounts on)', { kind: 'htpasswd', name: 'alice' });
        // The expired robot logged in while still valid; its expiry passes now.
        await sleep(400);
      });

      for (const identity of Object.keys(expected)) {
        it(identity, async () => {
          const p = who.get(identity);
          assert.ok(p, `${identity} logged in`);
          const got: Record<string, string> = {};
          const want: Record<string, string> = {};
          for (const name of names) {
            const facts = await hub.facts.facts(p, name);
            got[name] = ACTIONS.filter((a) => decide('accounts', p, a, facts).allowed)
              .map((a) => ({ pull: 'r', push: 'w', delete: 'd' })[a])
              .join('');
            want[name] = expected[identity]![name] ?? '';
          }
          assert.deepEqual(got, want);

          // The listing filter agrees with the decision: exactly the existing repositories it may pull.
          const listed = await whereReadable(e.store.db.selectFrom('repositories').select('name'), 'accounts', p, { anonymousPull: true })
            .where('name', 'in', names)
            .orderBy('name')
            .execute();
          const readable = names.filter((n) => R[n] !== null && want[n]!.includes('r')).sort((a, b) => (a < b ? -1 : 1));
          assert.deepEqual(
            listed.map((r) => r.name),
            readable,
          );
        });
      }

      it('the listing filter paginates inside the query, with an alias', async () => {
        const bob = who.get('bob')!;
        const page = (after: string) =>
          whereReadable(e.store.db.selectFrom('repositories as r').select('r.name'), 'accounts', bob, { anonymousPull: true }, { name: 'r.name' })
            .where('r.name', '>', after)
            .orderBy('r.name')
            .limit(1)
            .execute();
        const seen: string[] = [];
        for (let last = ''; ; ) {
          const rows = await page(last);
          if (rows.length === 0) break;
          seen.push(rows[0]!.name);
          last = rows[0]!.name;
        }
        assert.deepEqual(seen.filter((n) => (names as string[]).includes(n)), ['acme/web', 'alice/public', 'library/ubuntu']);
        const anonymousOff = await whereReadable(e.store.db.selectFrom('repositories').select('name'), 'accounts', { kind: 'anonymous' }, { anonymousPull: false }).execute();
        assert.deepEqual(anonymousOff, []);
      });

      it('the granter gives the intersection of what was asked and what is allowed', async () => {
        const erin = who.get('erin (team write on acme/api)')!;
        const granted = await hub.granter.grant(erin, [
          { type: 'repository', name: 'acme/api', actions: ['pull', 'push', 'delete'] },
          { type: 'repository', name: 'alice/private', actions: ['pull'] },
          { type: 'repository', name: 'acme/web', actions: ['*', 'pull'] },
          { type: 'registry', name: 'catalog', actions: ['*'] },
          { type: 'thing', name: 'x', actions: ['pull'] },
        ]);
        assert.deepEqual(granted, [
          { type: 'repository', name: 'acme/api', actions: ['pull', 'push'] },
          { type: 'repository', name: 'acme/web', actions: ['pull'] },
          { type: 'registry', name: 'catalog', actions: ['*'] },
        ]);
        const carol = who.get('carol (acme owner)')!;
        assert.deepEqual(await hub.granter.grant(carol, [{ type: 'repository', name: 'acme/new', actions: ['*'] }]), [{ type: 'repository', name: 'acme/new', actions: ['*'] }]);
        assert.deepEqual(await hub.granter.grant({ kind: 'anonymous' }, [{ type: 'repository', name: 'alice/private', actions: ['pull'] }]), []);
        // docker search's scope (registry:catalog:search): granted to whoever may list, anonymous too (results are filtered).
        const search = [{ type: 'registry', name: 'catalog', actions: ['search'] }];
        assert.deepEqual(await hub.granter.grant(erin, [{ type: 'registry', name: 'catalog', actions: ['search', 'pull'] }]), search);
        assert.deepEqual(await hub.granter.grant({ kind: 'anonymous' }, search), search);
      });
    });

    describe('accounts', () => {
      it('names: one OCI path component, 2–64 characters, reserved names refused, users and organizations share them', async () => {
        for (const bad of ['A', 'x', 'Upper', 'a/b', 'a+b', 'library', 'v2', '_x', 'a..b', '-a', 'a'.repeat(65)]) {
          await rejectsWith(hub.accounts.create({ name: bad, password: PASSWORD }, CLI), 'NAME_INVALID');
        }
        await hub.accounts.create({ name: 'n1.a_b__c--d', password: PASSWORD }, CLI);
        await rejectsWith(hub.accounts.create({ name: 'n1.a_b__c--d', password: PASSWORD }, CLI), 'NAME_TAKEN');
        await rejectsWith(hub.organizations.create('n1.a_b__c--d', 'n1.a_b__c--d', CLI), 'NAME_TAKEN');
        await hub.organizations.create('n1org', 'n1.a_b__c--d', CLI);
        await rejectsWith(hub.accounts.create({ name: 'n1org', password: PASSWORD }, CLI), 'NAME_TAKEN');
        await rejectsWith(hub.accounts.create({ name: 'n1short', password: 'short' }, CLI), 'INVALID');
        await rejectsWith(hub.accounts.create({ name: 'n1mail', password: PASSWORD, email: 'not an email' }, CLI), 'INVALID');
      });

      it('registration: open, closed, or with an invitation used once', async () => {
        await hub.accounts.register({ name: 'r-open', password: PASSWORD }, { name: null });
        const closed = createHub(e.store, { registration: 'closed' });
        await rejectsWith(closed.accounts.register({ name: 'r-closed', password: PASSWORD }, { name: null }), 'REGISTRATION_CLOSED');
        const invite = createHub(e.store, { registration: 'invite' });
        await rejectsWith(invite.accounts.register({ name: 'r-inv1', password: PASSWORD }, { name: null }), 'INVITATION_INVALID');
        await rejectsWith(invite.accounts.register({ name: 'r-inv1', password: PASSWORD, invitation: 'binv_made-up' }, { name: null }), 'INVITATION_INVALID');
        const { code } = await invite.accounts.invite({ email: 'x@example.org' }, CLI);
        // A taken name leaves the invitation usable.
        await rejectsWith(invite.accounts.register({ name: 'r-open', password: PASSWORD, invitation: code }, { name: null }), 'NAME_TAKEN');
        await invite.accounts.register({ name: 'r-inv1', password: PASSWORD, invitation: code }, { name: null });
        await rejectsWith(invite.accounts.register({ name: 'r-inv2', password: PASSWORD, invitation: code }, { name: null }), 'INVITATION_INVALID');
        const short = await invite.accounts.invite({ lifetimeMs: 1 }, CLI);
        await sleep(20);
        await rejectsWith(invite.accounts.register({ name: 'r-inv3', password: PASSWORD, invitation: short.code }, { name: null }), 'INVITATION_INVALID');
        assert.equal(await hub.accounts.get('r-inv3'), null);
      });

      it('a name under which repositories already live is not given out by self-service: an administrator hands it over', async () => {
        // Pushed by an administrator, or before accounts were on: the namespace has no account.
        await e.store.registry.ensureRepository('heldns/img');
        const open = createHub(e.store, { registration: 'open' });
        await rejectsWith(open.accounts.register({ name: 'heldns', password: PASSWORD }, { name: null }), 'NAME_TAKEN');
        const someone = await open.accounts.register({ name: 'held-someone', password: PASSWORD }, { name: null });
        await rejectsWith(open.organizations.create('heldns', someone.name, { name: someone.name }), 'NAME_TAKEN');
        // Names that only begin the same way are free ('_' is no wildcard here, '-' sorts before '/').
        await e.store.registry.ensureRepository('heldxns/img');
        await open.accounts.register({ name: 'held_ns', password: PASSWORD }, { name: null });
        await open.organizations.create('held-ns', someone.name, { name: someone.name });
        await open.organizations.create('heldns0', someone.name, { name: someone.name });
        // The administrator's hand-over: the organization then owns what was there.
        await open.organizations.create('heldns', someone.name, CLI, { adopt: true });
      });

      it('password and email changes; a password change ends refresh tokens', async () => {
        await hub.accounts.create({ name: 'pw-user', password: PASSWORD, email: 'a@example.org' }, CLI);
        const p = (await hub.verifier.verify('pw-user', PASSWORD, '10.1.0.1'))!;
        const refresh = await hub.refreshTokens.issue(p, 'docker');
        assert.deepEqual(await hub.refreshTokens.redeem(refresh), p);
        await rejectsWith(hub.accounts.changePassword('pw-user', 'another password', CLI, 'wrong current'), 'WRONG_PASSWORD');
        await hub.accounts.changePassword('pw-user', 'another password', CLI, PASSWORD);
        assert.equal(await hub.verifier.verify('pw-user', PASSWORD, '10.1.0.1'), null);
        assert.ok(await hub.verifier.verify('pw-user', 'another password', '10.1.0.1'));
        assert.equal(await hub.refreshTokens.redeem(refresh), null);
        await hub.accounts.changeEmail('pw-user', 'b@example.org', CLI);
        assert.equal((await hub.accounts.get('pw-user'))?.email, 'b@example.org');
      });

      it('a disabled account cannot log in, and what it was issued stops holding', async () => {
        await hub.accounts.create({ name: 'dis-user', password: PASSWORD }, CLI);
        const p = (await hub.verifier.verify('dis-user', PASSWORD, '10.1.0.2'))!;
        assert.equal(await hub.status.stillValid(p), true);
        await hub.accounts.setDisabled('dis-user', true, CLI);
        assert.equal(await hub.verifier.verify('dis-user', PASSWORD, '10.1.0.2'), null);
        assert.equal(await hub.status.stillValid(p), false);
      });

      it('delete: refused while the account owns repositories or is the last owner of an organization, naming them', async () => {
        await hub.accounts.create({ name: 'del-user', password: PASSWORD }, CLI);
        await hub.accounts.create({ name: 'del-other', password: PASSWORD }, CLI);
        await e.store.registry.ensureRepository('del-user/one');
        await e.store.registry.ensureRepository('del-user/two/deep');
        await e.store.registry.ensureRepository('del-user0/not-theirs');
        await hub.organizations.create('del-org', 'del-user', CLI);
        const err = await rejectsWith(hub.accounts.delete('del-user', CLI), 'ACCOUNT_IN_USE', /del-user\/one, del-user\/two\/deep.*last owner of del-org/);
        assert.deepEqual(err.detail, { repositories: ['del-user/one', 'del-user/two/deep'], organizations: ['del-org'] });
        await e.store.registry.deleteRepository('del-user/one');
        await e.store.registry.deleteRepository('del-user/two/deep');
        await hub.organizations.addTeamMember('del-org', 'owners', 'del-other', CLI);
        const p = (await hub.verifier.verify('del-user', PASSWORD, '10.1.0.3'))!;
        const t = await hub.tokens.create('del-user', { name: 'ci', scopes: ['read'] }, CLI);
        const refresh = await hub.refreshTokens.issue(p, 'docker');
        await hub.accounts.delete('del-user', CLI);
        assert.equal(await hub.accounts.get('del-user'), null);
        assert.equal(await hub.verifier.verify('del-user', t.secret, '10.1.0.3'), null);
        assert.equal(await hub.refreshTokens.redeem(refresh), null);
        assert.equal(await hub.status.stillValid(p), false);
        assert.deepEqual(await hub.organizations.members('del-org'), [{ name: 'del-other', owner: true }]);
        // A new account of the same name inherits nothing.
        await hub.accounts.create({ name: 'del-user', password: PASSWORD }, CLI);
        const again = (await hub.verifier.verify('del-user', PASSWORD, '10.1.0.3'))!;
        assert.equal(await hub.status.stillValid(p), false, 'the old principal is not the new account');
        assert.equal((await hub.facts.facts(again, 'del-org/x')).permission, 'none');
        await rejectsWith(hub.accounts.delete('nobody-here', CLI), 'NOT_FOUND');
      });

      it('the last administrator cannot be deleted or demoted', async () => {
        const s = await another();
        const solo = createHub(s);
        // Other suites' admins exist: count them, demote down to one.
        const admins = (await solo.accounts.list({ limit: 1000, kind: 'user' })).filter((a) => a.admin);
        assert.ok(admins.length >= 1);
        await solo.accounts.create({ name: 'adm-a', password: PASSWORD, admin: true }, CLI);
        for (const a of admins) await solo.accounts.setAdmin(a.name, false, CLI);
        await rejectsWith(solo.accounts.setAdmin('adm-a', false, CLI), 'LAST_ADMIN');
        await rejectsWith(solo.accounts.delete('adm-a', CLI), 'LAST_ADMIN');
        for (const a of admins) await solo.accounts.setAdmin(a.name, true, CLI);
        await solo.accounts.delete('adm-a', CLI);
      });

      it('htpasswd import keeps bcrypt hashes, which become scrypt at the first login', async () => {
        const hash = bcrypt.hashSync('imported secret', 4);
        const text = [`imp-user:${hash}`, 'imp-md5:$apr1$abc$def', `Bad_Name:${hash}`, `alice:${hash}`, '# comment', ''].join('\n');
        const r = await hub.accounts.importHtpasswd(text, CLI);
        assert.deepEqual(r.imported, ['imp-user']);
        assert.deepEqual(
          r.skipped.map((s) => [s.line, s.user]),
          [
            [2, 'imp-md5'],
            [3, 'Bad_Name'],
            [4, 'alice'],
          ],
        );
        const stored = async () => (await e.store.db.selectFrom('accounts').select('password_hash').where('name', '=', 'imp-user').executeTakeFirstOrThrow()).password_hash!;
        assert.equal(await stored(), hash);
        assert.equal(await hub.verifier.verify('imp-user', 'wrong', '10.1.0.4'), null);
        assert.equal(await stored(), hash, 'a failed login changes nothing');
        assert.ok(await hub.verifier.verify('imp-user', 'imported secret', '10.1.0.4'));
        assert.match(await stored(), /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{86}$/);
        assert.ok(await hub.verifier.verify('imp-user', 'imported secret', '10.1.0.4'), 'and the new hash verifies');
      });
    });

    describe('organizations and teams', () => {
      it('the creator owns; the last owner can neither leave nor be removed from owners', async () => {
        await hub.accounts.create({ name: 'o-carl', password: PASSWORD }, CLI);
        await hub.accounts.create({ name: 'o-dina', password: PASSWORD }, CLI);
        await hub.organizations.create('o-org', 'o-carl', CLI);
        assert.deepEqual(await hub.organizations.members('o-org'), [{ name: 'o-carl', owner: true }]);
        assert.deepEqual(await hub.organizations.teams('o-org'), ['owners']);
        await rejectsWith(hub.organizations.removeMember('o-org', 'o-carl', CLI), 'LAST_OWNER');
        await rejectsWith(hub.organizations.removeTeamMember('o-org', 'owners', 'o-carl', CLI), 'LAST_OWNER');
        await rejectsWith(hub.organizations.deleteTeam('o-org', 'owners', CLI), 'INVALID');
        await hub.organizations.addMember('o-org', 'o-dina', CLI);
        await hub.organizations.createTeam('o-org', 'devs', CLI);
        await rejectsWith(hub.organizations.createTeam('o-org', 'devs', CLI), 'NAME_TAKEN');
        await hub.organizations.addTeamMember('o-org', 'devs', 'o-dina', CLI);
        await hub.organizations.setTeamPermission('o-org', 'devs', 'o-org/app', 'write', CLI);
        await rejectsWith(hub.organizations.setTeamPermission('o-org', 'devs', 'other/app', 'write', CLI), 'INVALID');
        await rejectsWith(hub.organizations.setTeamPermission('o-org', 'devs', 'o-org/app', 'owner', CLI), 'INVALID');
        assert.deepEqual(await hub.organizations.teamPermissions('o-org', 'devs'), [{ repository: 'o-org/app', permission: 'write' }]);
        const dina = (await hub.verifier.verify('o-dina', PASSWORD, '10.2.0.1'))!;
        await e.store.registry.ensureRepository('o-org/app');
        assert.equal((await hub.facts.facts(dina, 'o-org/app')).permission, 'write');
        // Leaving the organization leaves its teams too.
        await hub.organizations.removeMember('o-org', 'o-dina', CLI);
        assert.deepEqual(await hub.organizations.teamMembers('o-org', 'devs'), []);
        assert.equal((await hub.facts.facts(dina, 'o-org/app')).permission, 'none');
        // A second owner: now the first may go.
        await hub.organizations.addTeamMember('o-org', 'owners', 'o-dina', CLI);
        await hub.organizations.removeMember('o-org', 'o-carl', CLI);
        assert.deepEqual(await hub.organizations.members('o-org'), [{ name: 'o-dina', owner: true }]);
        await hub.organizations.setTeamPermission('o-org', 'devs', 'o-org/app', 'none', CLI);
        assert.deepEqual(await hub.organizations.teamPermissions('o-org', 'devs'), []);
        await hub.organizations.deleteTeam('o-org', 'devs', CLI);
        assert.deepEqual(await hub.organizations.teams('o-org'), ['owners']);
      });

      it('collaborators only on existing repositories of a user, by another user', async () => {
        await hub.accounts.create({ name: 'c-own', password: PASSWORD }, CLI);
        await hub.accounts.create({ name: 'c-col', password: PASSWORD }, CLI);
        await rejectsWith(hub.repositories.setCollaborator('c-own/app', 'c-col', 'read', CLI), 'NOT_FOUND');
        await e.store.registry.ensureRepository('c-own/app');
        await rejectsWith(hub.repositories.setCollaborator('c-own/app', 'c-own', 'read', CLI), 'INVALID');
        await rejectsWith(hub.repositories.setCollaborator('acme/api', 'c-col', 'read', CLI), 'INVALID');
        await hub.repositories.setCollaborator('c-own/app', 'c-col', 'admin', CLI);
        assert.deepEqual(await hub.repositories.collaborators('c-own/app'), [{ name: 'c-col', permission: 'admin' }]);
        await hub.repositories.setCollaborator('c-own/app', 'c-col', 'none', CLI);
        assert.deepEqual(await hub.repositories.collaborators('c-own/app'), []);
      });
    });

    describe('visibility', () => {
      it('new repositories take the visibility the store was opened with; set and read back', async () => {
        assert.equal(await hub.repositories.visibility('vis/none'), null);
        await e.store.registry.ensureRepository('vis/default');
        assert.equal(await hub.repositories.visibility('vis/default'), 'public', 'public unless configured (accounts off)');
        const privateByDefault = await another({ newRepositoryVisibility: 'private' });
        await privateByDefault.registry.ensureRepository('vis/private-by-default');
        assert.equal(await hub.repositories.visibility('vis/private-by-default'), 'private');
        await hub.repositories.setVisibility('vis/private-by-default', 'public', { name: 'alice', requestId: 'req-vis' });
        assert.equal(await hub.repositories.visibility('vis/private-by-default'), 'public');
        await rejectsWith(hub.repositories.setVisibility('vis/none', 'public', CLI), 'NOT_FOUND');
      });
    });

    describe('tokens, robots and refresh tokens', () => {
      it('a personal access token: secret once, listed without it, last use written at most once a minute, revoked at once', async () => {
        await hub.accounts.create({ name: 't-user', password: PASSWORD }, CLI);
        const t = await hub.tokens.create('t-user', { name: 'ci', scopes: ['read', 'write'], expiresInMs: 3_600_000 }, CLI);
        assert.match(t.secret, /^bpat_[A-Za-z0-9_-]{43}$/);
        const listed = await hub.tokens.list('t-user');
        assert.equal(listed.length, 1);
        assert.equal(JSON.stringify(listed).includes(t.secret), false);
        assert.equal(JSON.stringify(listed).includes(t.secret.slice(5, 20)), false);
        assert.deepEqual(listed[0]!.scopes, ['read', 'write']);
        assert.equal(listed[0]!.lastUsedAt, null);
        const p = await hub.verifier.verify('t-user', t.secret, '10.3.0.1');
        assert.deepEqual(p, { kind: 'user', id: (await hub.accounts.get('t-user'))!.id, name: 't-user', admin: false, token: { id: t.id, scopes: ['read', 'write'] } });
        const first = (await hub.tokens.list('t-user'))[0]!.lastUsedAt;
        assert.ok(first !== null);
        await sleep(15);
        await hub.verifier.verify('t-user', t.secret, '10.3.0.1');
        assert.equal((await hub.tokens.list('t-user'))[0]!.lastUsedAt, first, 'not written again within a minute');
        assert.equal(await hub.verifier.verify('someone-else', t.secret, '10.3.0.1'), null, 'the token is its owner\'s only');
        const refresh = await hub.refreshTokens.issue(p!, 'docker');
        assert.deepEqual(await hub.refreshTokens.redeem(refresh), p);
        await hub.tokens.revoke('t-user', t.id, CLI);
        assert.equal(await hub.verifier.verify('t-user', t.secret, '10.3.0.1'), null);
        assert.equal(await hub.status.stillValid(p!), false);
        assert.equal(await hub.refreshTokens.redeem(refresh), null);
        await rejectsWith(hub.tokens.revoke('t-user', t.id, CLI), 'NOT_FOUND');
        await rejectsWith(hub.tokens.create('t-user', { name: 'x', scopes: ['admin'] }, CLI), 'INVALID');
        await rejectsWith(hub.tokens.create('t-user', { name: 'x', scopes: [] }, CLI), 'INVALID');
        const short = await hub.tokens.create('t-user', { name: 'short', scopes: ['read'], expiresInMs: 1 }, CLI);
        await sleep(20);
        assert.equal(await hub.verifier.verify('t-user', short.secret, '10.3.0.1'), null, 'expired');
      });

      it('robots: ORG+NAME with a secret; permissions only inside the organization; disabled or expired stop at once', async () => {
        await rejectsWith(hub.robots.create('acme', { name: 'bad', permissions: [{ repository: 'alice/x', permission: 'read' }] }, CLI), 'INVALID');
        await rejectsWith(hub.robots.create('alice', { name: 'bad' }, CLI), 'NOT_FOUND');
        const r = await hub.robots.create('acme', { name: 'deploy', description: 'deploys', permissions: [{ repository: 'acme/api', permission: 'read' }] }, CLI);
        assert.equal(r.login, 'acme+deploy');
        assert.match(r.secret, /^brob_/);
        await rejectsWith(hub.robots.create('acme', { name: 'deploy' }, CLI), 'NAME_TAKEN');
        assert.equal(JSON.stringify(await hub.robots.list('acme')).includes(r.secret), false);
        const p = (await hub.verifier.verify('acme+deploy', r.secret, '10.4.0.1'))!;
        assert.deepEqual(p, { kind: 'robot', id: r.id, name: 'acme+deploy', organization: 'acme' });
        assert.equal(await hub.verifier.verify('acme+deploy', `${r.secret}x`, '10.4.0.1'), null);
        assert.equal(await hub.verifier.verify('other+deploy', r.secret, '10.4.0.1'), null);
        await hub.robots.setPermission('acme', 'deploy', 'acme/api', 'write', CLI);
        assert.equal((await hub.facts.facts(p, 'acme/api')).permission, 'write');
        const refresh = await hub.refreshTokens.issue(p, 'ci');
        assert.deepEqual(await hub.refreshTokens.redeem(refresh), p);
        await hub.robots.disable('acme', 'deploy', CLI);
        assert.equal(await hub.verifier.verify('acme+deploy', r.secret, '10.4.0.1'), null);
        assert.equal(await hub.status.stillValid(p), false);
        assert.equal(await hub.refreshTokens.redeem(refresh), null);
        assert.equal((await hub.robots.list('acme')).find((x) => x.login === 'acme+deploy')?.disabled, true);
        await hub.robots.delete('acme', 'deploy', CLI);
        assert.equal((await hub.robots.list('acme')).find((x) => x.login === 'acme+deploy'), undefined);
      });

      it('refresh tokens: unknown, expired and logged-out ones redeem nothing', async () => {
        assert.equal(await hub.refreshTokens.redeem('bref_unknown'), null);
        assert.equal(await hub.refreshTokens.redeem('anything'), null);
        await hub.accounts.create({ name: 'rt-user', password: PASSWORD }, CLI);
        const p = (await hub.verifier.verify('rt-user', PASSWORD, '10.5.0.1'))!;
        const quick = createHub(e.store, { refreshLifetimeMs: 1 });
        const t = await quick.refreshTokens.issue(p, 'docker');
        await sleep(20);
        assert.equal(await hub.refreshTokens.redeem(t), null);
        const u = await hub.refreshTokens.issue(p, 'docker');
        assert.equal(await hub.refreshTokens.revoke(u), true);
        assert.equal(await hub.refreshTokens.redeem(u), null);
        await assert.rejects(hub.refreshTokens.issue({ kind: 'anonymous' }, 'docker'));
      });
    });

    describe('login limits and the audit log', () => {
      it('failed logins lock an account name and a client address, across processes, with the same answer as a wrong password', async () => {
        const limits = { perAccount: 3, perClient: 5, windowMs: 60_000 };
        const one = createHub(e.store, { loginLimits: limits });
        const two = createHub(await another(), { loginLimits: limits });
        await one.accounts.create({ name: 'rl-user', password: PASSWORD }, CLI);
        await one.accounts.create({ name: 'rl-next', password: PASSWORD }, CLI);
        assert.equal(await one.verifier.verify('rl-user', 'wrong 1', '10.9.0.1'), null);
        assert.equal(await two.verifier.verify('rl-user', 'wrong 2', '10.9.0.2'), null);
        assert.ok(await one.verifier.verify('rl-user', PASSWORD, '10.9.0.3'), 'below the limit');
        // A success clears the account's count.
        for (const n of [1, 2, 3]) assert.equal(await (n % 2 ? one : two).verifier.verify('rl-user', `wrong ${n}`, `10.9.1.${n}`), null);
        assert.equal(await two.verifier.verify('rl-user', PASSWORD, '10.9.0.4'), null, 'locked, from any process and address');
        assert.ok(await two.verifier.verify('rl-next', PASSWORD, '10.9.0.4'), 'another account is not locked');
        // Per client: 5 failures from one address, spread over names.
        for (const name of ['rl-a', 'rl-b', 'rl-c', 'rl-d', 'rl-e']) assert.equal(await one.verifier.verify(name, 'x', '10.9.9.9'), null);
        assert.equal(await two.verifier.verify('rl-next', PASSWORD, '10.9.9.9'), null, 'the address is locked');
        assert.ok(await two.verifier.verify('rl-next', PASSWORD, '10.9.9.8'));
        const log = await one.audit.read({ actor: 'rl-user', limit: 50 });
        assert.ok(log.entries.some((x) => x.action === 'login.failed' && x.detail?.with === 'rate limited'));
        assert.equal(JSON.stringify(log).includes(PASSWORD), false, 'no secret in the log');
        assert.equal(await one.limiter.prune(), 0, 'every window still open');
      });

      it('every security action is logged with actor, time (database clock), request id and client; read newest first, by pages', async () => {
        const before = await e.store.clock();
        await hub.accounts.create({ name: 'au-user', password: PASSWORD }, { name: 'root-admin', id: 1, requestId: 'req-1', client: '192.0.2.1' });
        await hub.tokens.create('au-user', { name: 'x', scopes: ['read'] }, { name: 'au-user', requestId: 'req-2', client: '192.0.2.2' });
        await hub.verifier.verify('au-user', 'wrong', '192.0.2.3');
        const { entries } = await hub.audit.read({ limit: 3 });
        assert.deepEqual(
          entries.map((x) => [x.action, x.actor, x.target]),
          [
            ['login.failed', 'au-user', 'au-user'],
            ['token.create', 'au-user', 'au-user'],
            ['account.create', 'root-admin', 'au-user'],
          ],
        );
        assert.equal(entries[2]!.requestId, 'req-1');
        assert.equal(entries[2]!.client, '192.0.2.1');
        assert.equal(entries[0]!.client, '192.0.2.3');
        for (const x of entries) assert.ok(x.at >= before && x.at <= (await e.store.clock()));
        assert.equal(JSON.stringify(entries).includes('bpat_'), false, 'the token secret is not logged');
        const pages: number[] = [];
        let next: number | null | undefined;
        do {
          const page = await hub.audit.read({ before: next ?? undefined, limit: 7 });
          pages.push(...page.entries.map((x) => x.id));
          next = page.next;
        } while (next !== null);
        const all = await hub.audit.read({ limit: 1000 });
        assert.deepEqual(pages, all.entries.map((x) => x.id));
        assert.deepEqual([...pages].sort((a, b) => b - a), pages);
        assert.deepEqual((await hub.audit.read({ target: 'vis/private-by-default' })).entries.map((x) => [x.action, x.requestId]), [['repository.visibility', 'req-vis']]);
      });
    });
  });
}
