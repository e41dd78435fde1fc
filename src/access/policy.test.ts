/**
 * The decision alone, with facts given: every kind of principal against
 * existing public, existing private and missing repositories, for each
 * action. (src/hub/suite.ts runs the same question with the facts loaded
 * from a real database, for every namespace kind, on SQLite and PostgreSQL.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, decideCatalog, scopeAllows } from './policy.js';
import type { Action, Permission, Principal, RepositoryFacts } from './types.js';

const ACTIONS: Action[] = ['pull', 'push', 'delete'];
const letters = (p: Principal, f: RepositoryFacts, mode: 'open' | 'accounts' = 'accounts', anonymousPull = true) =>
  ACTIONS.filter((a) => decide(mode, p, a, f, { anonymousPull }).allowed)
    .map((a) => ({ pull: 'r', push: 'w', delete: 'd' })[a])
    .join('');

const facts = (exists: boolean, visibility: 'public' | 'private', permission: Permission): RepositoryFacts => ({ name: 'ns/repo', exists, visibility, permission });
const user = (extra: Partial<Extract<Principal, { kind: 'user' }>> = {}): Principal => ({ kind: 'user', id: 1, name: 'u', admin: false, ...extra });
const robot: Principal = { kind: 'robot', id: 7, name: 'acme+ci', organization: 'acme' };

describe('decide: principals × repositories × actions', () => {
  // [principal, permission held, expected on public / private / missing]
  const rows: [string, Principal, Permission, string, string, string][] = [
    ['anonymous', { kind: 'anonymous' }, 'none', 'r', '', ''],
    ['user without permission', user(), 'none', 'r', '', ''],
    ['user with read', user(), 'read', 'r', 'r', 'r'],
    ['user with write', user(), 'write', 'rw', 'rw', 'rw'],
    ['user with admin (owner)', user(), 'admin', 'rwd', 'rwd', 'rwd'],
    ['administrator', user({ admin: true }), 'none', 'rwd', 'rwd', 'rwd'],
    ['owner through a read token', user({ token: { id: 1, scopes: ['read'] } }), 'admin', 'r', 'r', 'r'],
    ['owner through a write token', user({ token: { id: 1, scopes: ['write'] } }), 'admin', 'rw', 'rw', 'rw'],
    ['owner through a delete token', user({ token: { id: 1, scopes: ['delete'] } }), 'admin', 'rwd', 'rwd', 'rwd'],
    ['administrator through a read token', user({ admin: true, token: { id: 1, scopes: ['read'] } }), 'none', 'r', 'r', 'r'],
    ['reader through a delete token', user({ token: { id: 1, scopes: ['delete'] } }), 'read', 'r', 'r', 'r'],
    ['robot without permission', robot, 'none', 'r', '', ''],
    ['robot with write', robot, 'write', 'rw', 'rw', 'rw'],
    ['htpasswd user with accounts on', { kind: 'htpasswd', name: 'x' }, 'admin', '', '', ''],
  ];
  for (const [label, p, perm, pub, priv, missing] of rows) {
    it(label, () => {
      assert.equal(letters(p, facts(true, 'public', perm)), pub, 'public');
      assert.equal(letters(p, facts(true, 'private', perm)), priv, 'private');
      assert.equal(letters(p, facts(false, 'private', perm)), missing, 'missing');
      // A missing repository is decided by its namespace alone, whatever visibility the facts carry.
      assert.equal(letters(p, facts(false, 'public', perm)), missing, 'missing (public facts)');
    });
  }

  it('anonymous pulls of public repositories follow anonymouspull', () => {
    assert.equal(letters({ kind: 'anonymous' }, facts(true, 'public', 'none'), 'accounts', false), '');
    assert.equal(letters(user(), facts(true, 'public', 'none'), 'accounts', false), 'r', 'signed-in users still read public repositories');
  });

  it('a private repository and a missing one get the same denial', () => {
    for (const p of [{ kind: 'anonymous' } as Principal, user(), robot]) {
      for (const a of ACTIONS) assert.deepEqual(decide('accounts', p, a, facts(true, 'private', 'none')), decide('accounts', p, a, facts(false, 'private', 'none')));
    }
    assert.deepEqual(decide('accounts', { kind: 'anonymous' }, 'pull', facts(true, 'private', 'none')), { allowed: false, reason: 'credentials required' });
    assert.deepEqual(decide('accounts', user(), 'pull', facts(true, 'private', 'none')), { allowed: false, reason: 'insufficient permission' });
    assert.deepEqual(decide('accounts', user({ token: { id: 1, scopes: ['read'] } }), 'push', facts(true, 'private', 'admin')), { allowed: false, reason: 'token scope' });
  });

  it('open mode (accounts off): anonymous and htpasswd users may do everything, as registry:2', () => {
    for (const p of [{ kind: 'anonymous' } as Principal, { kind: 'htpasswd', name: 'x' } as Principal]) {
      for (const f of [facts(true, 'private', 'none'), facts(false, 'private', 'none')]) assert.equal(letters(p, f, 'open'), 'rwd');
    }
  });

  it('a granted token allows exactly its access list, in either mode', () => {
    const g: Principal = { kind: 'granted', subject: 's', access: [{ type: 'repository', name: 'ns/repo', actions: ['pull', 'push'] }, { type: 'repository', name: 'other', actions: ['*'] }] };
    for (const mode of ['open', 'accounts'] as const) {
      assert.equal(letters(g, facts(true, 'private', 'none'), mode), 'rw');
      assert.equal(letters(g, { ...facts(false, 'private', 'none'), name: 'other' }, mode), 'rwd');
      assert.equal(letters(g, { ...facts(true, 'public', 'none'), name: 'third' }, mode), '', 'even public: only what the token lists');
    }
  });

  it('the catalog: everyone lists (filtered); a token only with registry:catalog:*', () => {
    assert.equal(decideCatalog('accounts', { kind: 'anonymous' }).allowed, true);
    assert.equal(decideCatalog('accounts', { kind: 'granted', subject: 's', access: [] }).allowed, false);
    assert.equal(decideCatalog('accounts', { kind: 'granted', subject: 's', access: [{ type: 'registry', name: 'catalog', actions: ['*'] }] }).allowed, true);
  });

  it('scopes cap actions', () => {
    assert.deepEqual(ACTIONS.filter((a) => scopeAllows(['read'], a)), ['pull']);
    assert.deepEqual(ACTIONS.filter((a) => scopeAllows(['write'], a)), ['pull', 'push']);
    assert.deepEqual(ACTIONS.filter((a) => scopeAllows(['read', 'delete'], a)), ['pull', 'push', 'delete']);
    assert.deepEqual(ACTIONS.filter((a) => scopeAllows([], a)), []);
  });
});
