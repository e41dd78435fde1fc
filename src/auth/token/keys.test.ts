import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPostgres, type PostgresServer } from '../../../test/support/postgres.js';
import { SigningKeyQueries } from '../../metadata/keys.js';
import { MetadataStore } from '../../metadata/store.js';
import { WriteGate } from '../../metadata/gate.js';
import { parsePemBundle } from './certificate.js';
import { jwkThumbprint } from './jwk.js';
import { KeyRing } from './keys.js';

async function sqliteStores(n: number): Promise<{ stores: MetadataStore[]; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-keys-'));
  const stores: MetadataStore[] = [];
  // Connections in one process take turns at a write gate, as Berth's serving threads do (gate.ts).
  const shared = WriteGate.shared();
  for (let i = 0; i < n; i++) stores.push(await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db'), writeGate: new WriteGate(shared, i + 1) }));
  return {
    stores,
    async cleanup() {
      for (const s of stores) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function checkKey(ring: KeyRing): void {
  const k = ring.signer();
  assert.equal(k.algorithm, 'ES256');
  assert.equal(k.kid, jwkThumbprint(k.publicKey));
  assert.ok(k.certificate.publicKey.equals(k.publicKey));
  assert.ok(k.certificate.verify(k.publicKey), 'self-signed');
  assert.equal(k.certificate.ca, true);
  // The private and public halves belong together.
  assert.ok(k.privateKey);
}

describe('signing keys (SQLite)', () => {
  it('two serving threads starting at once agree on one key', async () => {
    const { stores, cleanup } = await sqliteStores(2);
    try {
      const [a, b] = await Promise.all(stores.map((s) => KeyRing.open(new SigningKeyQueries(s))));
      checkKey(a!);
      assert.equal(a!.signer().kid, b!.signer().kid);
      assert.equal(a!.signer().x5c, b!.signer().x5c, 'the same certificate too');
      assert.equal((await new SigningKeyQueries(stores[0]!).list()).length, 1);
      // And a restart finds it.
      const again = await KeyRing.open(new SigningKeyQueries(stores[1]!));
      assert.equal(again.signer().kid, a!.signer().kid);
    } finally {
      await cleanup();
    }
  });

  it('rotation: the new key signs, the old one verifies until retired; other replicas see it at their reload', async () => {
    const { stores, cleanup } = await sqliteStores(2);
    try {
      const a = await KeyRing.open(new SigningKeyQueries(stores[0]!));
      const b = await KeyRing.open(new SigningKeyQueries(stores[1]!), { reloadIntervalMs: 0 });
      const first = a.signer().kid;
      const second = (await a.rotate()).kid;
      assert.notEqual(second, first);
      assert.equal(a.signer().kid, second);
      assert.ok(a.byKid(first), 'the old key still verifies');
      assert.deepEqual(a.jwks().keys.map((k) => k.kid), [second, first]);
      assert.equal(parsePemBundle(a.certificateBundle()).length, 2);

      assert.equal(b.byKid(second), undefined, 'not read yet');
      await b.fresh();
      assert.equal(b.signer().kid, second);

      assert.equal(await a.retire(first), true);
      assert.equal(await a.retire(first), false, 'once');
      assert.equal(a.byKid(first), undefined);
      assert.deepEqual(a.jwks().keys.map((k) => k.kid), [second]);
      assert.equal(parsePemBundle(a.certificateBundle()).length, 1);
      await b.fresh();
      assert.equal(b.byKid(first), undefined);
    } finally {
      await cleanup();
    }
  });

  it('a key added to sign later is published at once but does not sign yet', async () => {
    const { stores, cleanup } = await sqliteStores(1);
    try {
      const ring = await KeyRing.open(new SigningKeyQueries(stores[0]!));
      const first = ring.signer().kid;
      const next = await ring.rotate({ activateInMs: 3600_000 });
      assert.equal(ring.signer().kid, first);
      assert.ok(ring.byKid(next.kid));
      assert.ok(ring.jwks().keys.some((k) => k.kid === next.kid));
    } finally {
      await cleanup();
    }
  });

  it('every key retired: signing says so', async () => {
    const { stores, cleanup } = await sqliteStores(1);
    try {
      const ring = await KeyRing.open(new SigningKeyQueries(stores[0]!));
      await ring.retire(ring.signer().kid);
      assert.throws(() => ring.signer(), /no signing key is active/);
    } finally {
      await cleanup();
    }
  });

  it('a key from a PEM file signs; the database gets its certificate, not its private key', async () => {
    const { stores, cleanup } = await sqliteStores(2);
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const a = await KeyRing.open(new SigningKeyQueries(stores[0]!), { keyPem: pem });
      const kid = jwkThumbprint(privateKey);
      assert.equal(a.signer().kid, kid);
      const sig = (await import('node:crypto')).sign('sha256', Buffer.from('x'), a.signer().privateKey!);
      assert.ok(verify('sha256', Buffer.from('x'), a.signer().publicKey, sig));
      const rows = await new SigningKeyQueries(stores[0]!).list();
      assert.equal(rows.length, 2, 'the generated first key and the file key');
      assert.equal(rows.find((r) => r.kid === kid)?.privateKey, null);
      // A replica with the same file records nothing new and sends the same certificate.
      const b = await KeyRing.open(new SigningKeyQueries(stores[1]!), { keyPem: pem });
      assert.equal(b.signer().x5c, a.signer().x5c);
      assert.equal((await new SigningKeyQueries(stores[0]!).list()).length, 2);
      // A replica without the file verifies the file key's tokens but signs with a key it holds.
      const c = await KeyRing.open(new SigningKeyQueries(stores[1]!));
      assert.ok(c.byKid(kid));
      assert.notEqual(c.signer().kid, kid);
    } finally {
      await cleanup();
    }
  });
});

describe('signing keys (PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it('four processes starting at once agree on one key', async () => {
    const stores = await Promise.all([0, 1, 2, 3].map(() => MetadataStore.open({ url: pg.url })));
    try {
      const rings = await Promise.all(stores.map((s) => KeyRing.open(new SigningKeyQueries(s))));
      const kids = new Set(rings.map((r) => r.signer().kid));
      assert.equal(kids.size, 1);
      assert.equal((await new SigningKeyQueries(stores[0]!).list()).length, 1);
      // Concurrent rotations each add one key, with distinct ordinals.
      await Promise.all(rings.slice(0, 2).map((r) => r.rotate()));
      const rows = await new SigningKeyQueries(stores[0]!).list();
      assert.deepEqual(rows.map((r) => r.ordinal), [1, 2, 3]);
    } finally {
      for (const s of stores) await s.close();
    }
  });
});
