import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerChallenge, defaultRealm, quote } from './challenge.js';
import { allows, formatScope, parseScope, parseScopes } from './scope.js';
import { Lru } from './lru.js';

describe('scopes', () => {
  it('parse type, name and actions; the class is dropped; a name may hold a colon', () => {
    assert.deepEqual(parseScope('repository:alice/app:pull,push'), { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] });
    assert.deepEqual(parseScope('repository(plugin):vieux/sshfs:pull'), { type: 'repository', name: 'vieux/sshfs', actions: ['pull'] });
    assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
    assert.deepEqual(parseScope('repository:localhost:5000/app:pull'), { type: 'repository', name: 'localhost:5000/app', actions: ['pull'] });
    assert.deepEqual(parseScope('repository:a:pull,pull'), { type: 'repository', name: 'a', actions: ['pull'] });
    for (const bad of ['', 'repository', 'repository:app', ':app:pull', 'repository::pull', 'repository:app:', 'repository:app:pull,', 'Repo:app:pull', 'repository:app:PULL', 'repository(:app:pull']) {
      assert.equal(parseScope(bad), null, bad);
    }
  });

  it('several, repeated or space-joined, merged by resource', () => {
    assert.deepEqual(parseScopes(['repository:a:pull', 'repository:b:pull repository:a:push', '']), {
      access: [
        { type: 'repository', name: 'a', actions: ['pull', 'push'] },
        { type: 'repository', name: 'b', actions: ['pull'] },
      ],
    });
    assert.deepEqual(parseScopes(['repository:a:pull  bogus']), { invalid: 'bogus' });
    assert.deepEqual(parseScopes([]), { access: [] });
  });

  it('format and match, * allowing every action', () => {
    assert.equal(formatScope({ type: 'repository', name: 'a/b', actions: ['pull', 'push'] }), 'repository:a/b:pull,push');
    const granted = [{ type: 'repository', name: 'a', actions: ['pull'] }, { type: 'registry', name: 'catalog', actions: ['*'] }];
    assert.equal(allows(granted, 'repository', 'a', 'pull'), true);
    assert.equal(allows(granted, 'repository', 'a', 'push'), false);
    assert.equal(allows(granted, 'repository', 'b', 'pull'), false);
    assert.equal(allows(granted, 'registry', 'catalog', 'anything'), true);
  });
});

describe('Bearer challenge', () => {
  it('names realm, service, the scopes joined by a space, and the error', () => {
    assert.equal(
      bearerChallenge({ realm: 'https://r.example/token', service: 'r.example', scope: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] }),
      'Bearer realm="https://r.example/token",service="r.example",scope="repository:alice/app:pull,push"',
    );
    assert.equal(
      bearerChallenge({
        realm: 'https://r.example/token',
        service: 'r.example',
        scope: [
          { type: 'repository', name: 'a', actions: ['pull'] },
          { type: 'repository', name: 'b', actions: ['pull', 'push'] },
        ],
        error: 'insufficient_scope',
      }),
      'Bearer realm="https://r.example/token",service="r.example",scope="repository:a:pull repository:b:pull,push",error="insufficient_scope"',
    );
    assert.equal(bearerChallenge({ realm: 'r', service: 's', scope: [] }), 'Bearer realm="r",service="s"');
  });

  it('quotes per RFC 7230 and drops control characters', () => {
    assert.equal(quote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(quote('x\r\nSet-Cookie: y'), '"xSet-Cookie: y"');
    assert.ok(!/[\r\n]/.test(bearerChallenge({ realm: 'r\n', service: 's\r' })));
  });

  it('default realm: the token endpoint under the prefix', () => {
    assert.equal(defaultRealm('https', 'registry.example:8443', '/'), 'https://registry.example:8443/token');
    assert.equal(defaultRealm('http', '127.0.0.1:5001', '/reg/'), 'http://127.0.0.1:5001/reg/token');
  });
});

describe('Lru', () => {
  it('forgets the least recently used', () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    assert.equal(l.get('a'), 1);
    l.set('c', 3);
    assert.equal(l.get('b'), undefined);
    assert.equal(l.get('a'), 1);
    assert.equal(l.size, 2);
  });

  it('never evicts an entry read within the last max/2 insertions, and evicts the others oldest first', () => {
    const l = new Lru<number, number>(8);
    for (let i = 0; i < 8; i++) l.set(i, i);
    // Read 0 now and then: it survives any number of insertions.
    for (let i = 8; i < 200; i++) {
      if (i % 4 === 0) assert.equal(l.get(0), 0, `0 is kept (insertion ${i})`);
      l.set(i, i);
      assert.equal(l.size, 8);
    }
    // The others went in insertion order: the 7 newest remain.
    for (let i = 1; i < 193; i++) assert.equal(l.get(i), undefined, `${i} was evicted`);
    for (let i = 193; i < 200; i++) assert.equal(l.get(i), i);
    // Unread for max insertions, it goes too.
    for (let i = 200; i < 208; i++) l.set(i, i);
    assert.equal(l.get(0), undefined);
  });
});
