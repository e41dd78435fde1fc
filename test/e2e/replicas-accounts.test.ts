/**
 * Replicas with accounts: two `berth serve` processes over one PostgreSQL
 * database behind HAProxy. What one replica writes to the Hub (a visibility
 * or permission change, a revoked personal access token, a retired signing
 * key) is refused by the other replica at once, although the other
 * had just answered from its caches; and a repository webhook is delivered
 * once per push, whichever replica took the push and whichever delivers.
 *
 * "At once" means the very next request, with no wait: the write's answer
 * comes back only after its change signal has gone through PostgreSQL
 * (src/metadata/changes.ts).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CLI, createHub, type Hub } from '../../src/hub/index.js';
import { MetadataStore } from '../../src/metadata/store.js';
import { basic, pushSmallImage } from '../support/accounts.js';
import { BearerClient } from '../support/bearer.js';
import { createDatabase, startPostgres, type PostgresServer } from '../support/postgres.js';
import { replicaStorage, startReplicas, type ReplicaSet, type StorageBlock } from '../support/replicas.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PASSWORDS = { chief: 'chief-password-1', alice: 'alice-password-1', bob: 'bob-password-1' };

/** A registry token for `scope`, from the token endpoint of `base`. */
async function token(base: string, user: string, secret: string, scope: string): Promise<string> {
  const r = await fetch(`${base}/token?service=berth&scope=${encodeURIComponent(scope)}`, { headers: { Authorization: basic(user, secret) } });
  assert.equal(r.status, 200, await r.clone().text());
  return ((await r.json()) as { token: string }).token;
}

/** Receives webhook payloads; counts them by tag. */
class HookReceiver {
  readonly tags: string[] = [];
  private server!: http.Server;
  url = '';
  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        try {
          this.tags.push((JSON.parse(Buffer.concat(parts).toString()) as { push_data: { tag: string } }).push_data.tag);
        } catch {
          this.tags.push('(unreadable)');
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('replicas with accounts over one PostgreSQL', { timeout: 300_000 }, () => {
  let pg: PostgresServer;
  let storage: StorageBlock;
  let set: ReplicaSet;
  let store: MetadataStore;
  let hub: Hub;
  let a: string;
  let b: string;

  before(async () => {
    pg = await startPostgres();
    storage = await replicaStorage();
    const url = await createDatabase(pg, 'replicas_accounts');
    set = await startReplicas({
      count: 2,
      databaseUrl: url,
      storage,
      env: { REGISTRY_AUTH_ACCOUNTS_DEFAULTVISIBILITY: 'private', REGISTRY_AUTH_ACCOUNTS_ANONYMOUSPULL: 'true' },
    });
    [a, b] = set.urls as [string, string];
    // The test's own connection to the same database, for what has no API call here (users).
    store = await MetadataStore.open({ url });
    hub = createHub(store, { defaultVisibility: 'private' });
    await hub.accounts.create({ name: 'chief', password: PASSWORDS.chief, admin: true }, CLI);
    await hub.accounts.create({ name: 'alice', password: PASSWORDS.alice }, CLI);
    await hub.accounts.create({ name: 'bob', password: PASSWORDS.bob }, CLI);
    await pushSmallImage(new BearerClient({ user: 'alice', password: PASSWORDS.alice }).fetch, set.url, 'alice/app', 'v1');
  });
  after(async () => {
    await set?.stop();
    await store?.close();
    await storage?.stop();
    await pg?.stop();
  });

  it('a visibility change through one replica holds at the other at once', async () => {
    const api = (base: string, visibility: string) =>
      fetch(`${base}/berth/v1/repositories/alice/app`, { method: 'PATCH', headers: { Authorization: basic('alice', PASSWORDS.alice), 'Content-Type': 'application/json' }, body: JSON.stringify({ visibility }) });
    const anonymous = (base: string) => fetch(`${base}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } });
    for (let round = 0; round < 4; round++) {
      const [writer, reader] = round % 2 === 0 ? [a, b] : [b, a];
      assert.equal((await anonymous(reader)).status, 401, `round ${round}: private to begin with`);
      assert.equal((await api(writer, 'public')).status, 200);
      // Anonymous pulls of a public repository still take an anonymous token first.
      const anon = new BearerClient().fetch;
      assert.equal((await anon(`${reader}/v2/alice/app/manifests/v1`, { headers: { Accept: OCI } })).status, 200, `round ${round}: public at the other replica at once`);
      assert.equal((await api(writer, 'private')).status, 200);
      assert.equal((await anonymous(reader)).status, 401, `round ${round}: private again at the other replica at once`);
    }
  });

  it('a permission granted or taken through one replica holds at the other at once', async () => {
    const collaborator = (base: string, method: 'PUT' | 'DELETE') =>
      fetch(`${base}/berth/v1/repositories/alice/app/-/collaborators/bob`, {
        method,
        headers: { Authorization: basic('alice', PASSWORDS.alice), 'Content-Type': 'application/json' },
        body: method === 'PUT' ? JSON.stringify({ permission: 'read' }) : undefined,
      });
    const asBob = (base: string) => fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: basic('bob', PASSWORDS.bob) } });
    const refused = (await asBob(a)).status;
    assert.notEqual(refused, 200, 'bob may not read alice/app to begin with');
    for (let round = 0; round < 4; round++) {
      const [writer, reader] = round % 2 === 0 ? [a, b] : [b, a];
      assert.equal((await asBob(reader)).status, refused, `round ${round}: refused before`);
      const granted = await collaborator(writer, 'PUT');
      assert.ok(granted.status === 200 || granted.status === 201 || granted.status === 204, `grant: ${granted.status} ${await granted.clone().text()}`);
      assert.equal((await asBob(reader)).status, 200, `round ${round}: granted at the other replica at once`);
      const taken = await collaborator(writer, 'DELETE');
      assert.ok(taken.status === 200 || taken.status === 204, `take: ${taken.status}`);
      assert.equal((await asBob(reader)).status, refused, `round ${round}: taken at the other replica at once`);
    }
  });

  it('a personal access token revoked through one replica stops at the other at once: its tokens and Basic', async () => {
    for (let round = 0; round < 3; round++) {
      const [writer, reader] = round % 2 === 0 ? [a, b] : [b, a];
      const created = await fetch(`${writer}/berth/v1/accounts/alice/tokens`, {
        method: 'POST',
        headers: { Authorization: basic('alice', PASSWORDS.alice), 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: `ci-${round}`, scopes: ['read', 'write'] }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const pat = (await created.json()) as { id: number; secret: string };
      const bearer = await token(writer, 'alice', pat.secret, 'repository:alice/app:pull');
      // Both replicas answer the token and the Basic credential, and keep them in their caches.
      for (let i = 0; i < 3; i++) {
        for (const base of [a, b]) {
          assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${bearer}` } })).status, 200);
          assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: basic('alice', pat.secret) } })).status, 200);
        }
      }
      const revoked = await fetch(`${writer}/berth/v1/accounts/alice/tokens/${pat.id}`, { method: 'DELETE', headers: { Authorization: basic('alice', PASSWORDS.alice) } });
      assert.equal(revoked.status, 204);
      assert.equal((await fetch(`${reader}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${bearer}` } })).status, 401, `round ${round}: the token is refused at the other replica at once`);
      assert.equal((await fetch(`${reader}/v2/alice/app/tags/list`, { headers: { Authorization: basic('alice', pat.secret) } })).status, 401, `round ${round}: Basic is refused at the other replica at once`);
      assert.equal((await fetch(`${reader}/token?service=berth&scope=repository:alice/app:pull`, { headers: { Authorization: basic('alice', pat.secret) } })).status, 401);
    }
  });

  it('a browser session opened on one replica works on the other, and a logout on either ends it everywhere at once', async () => {
    for (let round = 0; round < 2; round++) {
      const [opener, other] = round % 2 === 0 ? [a, b] : [b, a];
      const login = await fetch(`${opener}/berth/v1/sessions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'alice', password: PASSWORDS.alice }) });
      assert.equal(login.status, 201);
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const { csrfToken } = (await login.json()) as { csrfToken: string };
      // The session and its CSRF token are good on both replicas: nothing of them is local.
      for (const base of [a, b]) {
        const current = await fetch(`${base}/berth/v1/sessions/current`, { headers: { Cookie: cookie } });
        assert.equal(current.status, 200);
        assert.equal(((await current.json()) as { csrfToken: string }).csrfToken, csrfToken);
      }
      const logout = await fetch(`${other}/berth/v1/sessions/current`, { method: 'DELETE', headers: { Cookie: cookie, 'X-CSRF-Token': csrfToken } });
      assert.equal(logout.status, 204);
      for (const base of [opener, other]) assert.equal((await fetch(`${base}/berth/v1/sessions/current`, { headers: { Cookie: cookie } })).status, 401, `round ${round}: ${base}`);
    }
  });

  it('a change made by another process on the database (the CLI) reaches both replicas at once', async () => {
    const secret = (await hub.tokens.create('alice', { name: 'cli-made', scopes: ['read'], expiresInMs: null }, CLI)).secret;
    const bearer = await token(a, 'alice', secret, 'repository:alice/app:pull');
    for (const base of [a, b]) assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${bearer}` } })).status, 200);
    const [info] = (await hub.tokens.list('alice')).filter((t) => t.name === 'cli-made');
    await hub.tokens.revoke('alice', info!.id, CLI);
    for (const base of [a, b]) assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${bearer}` } })).status, 401, base);
  });

  it('a signing key retired on one replica verifies nothing at the other', async () => {
    const before = await token(b, 'alice', PASSWORDS.alice, 'repository:alice/app:pull');
    for (const base of [a, b]) assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${before}` } })).status, 200);
    // Rotated and retired by another process on the database (as an operator's tool would), through its own key ring.
    const { KeyRing } = await import('../../src/auth/token/index.js');
    const { SigningKeyQueries } = await import('../../src/metadata/keys.js');
    const ring = await KeyRing.open(new SigningKeyQueries(store));
    const old = ring.signer().kid;
    await ring.rotate();
    assert.ok(await ring.retire(old));
    for (const base of [a, b]) assert.equal((await fetch(`${base}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${before}` } })).status, 401, `${base}: the retired key's token is refused at once`);
    // New tokens are signed with the new key, on both.
    for (const base of [a, b]) {
      const fresh = await token(base, 'alice', PASSWORDS.alice, 'repository:alice/app:pull');
      for (const other of [a, b]) assert.equal((await fetch(`${other}/v2/alice/app/tags/list`, { headers: { Authorization: `Bearer ${fresh}` } })).status, 200);
    }
  });

  it('delivers a repository webhook once per push across both replicas', async () => {
    const receiver = await new HookReceiver().start();
    try {
      const created = await fetch(`${set.url}/berth/v1/repositories/alice/app/-/webhooks`, {
        method: 'POST',
        headers: { Authorization: basic('alice', PASSWORDS.alice), 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'counter', url: receiver.url }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const alice = new BearerClient({ user: 'alice', password: PASSWORDS.alice }).fetch;
      const tags = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'];
      // Through the balancer: the pushes' requests go to both replicas.
      for (const tag of tags) await pushSmallImage(alice, set.url, 'alice/app', tag);
      const deadline = Date.now() + 60_000;
      while (receiver.tags.length < tags.length && Date.now() < deadline) await sleep(100);
      // Time for a duplicate from a second deliverer to arrive, if there were one.
      await sleep(2500);
      assert.deepEqual([...receiver.tags].sort(), tags, 'each push delivered once');
    } finally {
      await receiver.close();
    }
  });
});

/** One GET on a fresh connection (a replica deals each to its next thread), with its status and the thread that served it. */
function freshGet(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('replicas of two serving threads each', { timeout: 300_000 }, () => {
  let pg: PostgresServer;
  let storage: StorageBlock;
  let set: ReplicaSet;
  let store: MetadataStore;
  let hub: Hub;

  before(async () => {
    pg = await startPostgres();
    storage = await replicaStorage();
    const url = await createDatabase(pg, 'replicas_threads');
    set = await startReplicas({ count: 2, workers: 2, databaseUrl: url, storage, env: { REGISTRY_AUTH_ACCOUNTS_DEFAULTVISIBILITY: 'private' } });
    store = await MetadataStore.open({ url });
    hub = createHub(store, { defaultVisibility: 'private' });
    await hub.accounts.create({ name: 'alice', password: PASSWORDS.alice }, CLI);
    await pushSmallImage(new BearerClient({ user: 'alice', password: PASSWORDS.alice }).fetch, set.url, 'alice/app', 'v1');
  });
  after(async () => {
    await set?.stop();
    await store?.close();
    await storage?.stop();
    await pg?.stop();
  });

  it('a token revoked through one thread of one replica is refused by every thread of both at once', async () => {
    const [a, b] = set.urls as [string, string];
    const { secret, id } = await hub.tokens.create('alice', { name: 'threads', scopes: ['read'], expiresInMs: null }, CLI);
    const bearer = await token(a, 'alice', secret, 'repository:alice/app:pull');
    const headers = { Authorization: `Bearer ${bearer}` };
    // Fresh connections are dealt in turn: four to each replica reach both of its threads, twice.
    for (const base of [a, b]) for (let i = 0; i < 4; i++) assert.equal(await freshGet(`${base}/v2/alice/app/tags/list`, headers), 200);
    const revoked = await fetch(`${a}/berth/v1/accounts/alice/tokens/${id}`, { method: 'DELETE', headers: { Authorization: basic('alice', PASSWORDS.alice) } });
    assert.equal(revoked.status, 204);
    for (const base of [a, b]) for (let i = 0; i < 4; i++) assert.equal(await freshGet(`${base}/v2/alice/app/tags/list`, headers), 401, `${base}, request ${i}`);
  });
});
