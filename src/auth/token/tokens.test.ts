import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPrivateKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import type { Principal } from '../../access/types.js';
import { SigningKeyQueries } from '../../metadata/keys.js';
import { MetadataStore } from '../../metadata/store.js';
import { b64url, parseJwt, signJwt } from './jwt.js';
import { KeyRing } from './keys.js';
import { berthClaim, holderOf, TokenIssuer, TokenVerifier } from './tokens.js';
import type { CredentialStatus } from './types.js';

const alice: Principal = { kind: 'user', id: 7, name: 'alice', admin: false, token: { id: 42, scopes: ['read', 'write'] } };
const pull = [{ type: 'repository', name: 'alice/app', actions: ['pull'] }];

/** CredentialStatus over a set of revoked keys, counting its calls. */
class FakeStatus implements CredentialStatus {
  revoked = new Set<string>();
  calls = 0;
  fail = false;
  async stillValid(p: Principal): Promise<boolean> {
    this.calls++;
    if (this.fail) throw new Error('database down');
    const key = p.kind === 'user' ? `user:${p.id}:${p.token?.id ?? ''}` : p.kind === 'robot' ? `robot:${p.id}` : p.kind;
    return !this.revoked.has(key);
  }
}

describe('Berth access tokens', () => {
  let store: MetadataStore;
  let ring: KeyRing;
  let t = Date.now();
  const now = () => t;
  before(async () => {
    store = await MetadataStore.open({ sqlitePath: ':memory:' });
    ring = await KeyRing.open(new SigningKeyQueries(store));
  });
  after(async () => {
    await store.close();
  });
  const settings = () => ({ keys: ring, issuer: 'berth', service: 'registry.test', now });
  const issuer = () => new TokenIssuer({ ...settings(), lifetimeMs: 300_000 });

  it('are ES256 JWTs with kid, x5c and the Docker token claims', async () => {
    t = Date.now();
    const issued = await issuer().issue(alice, pull);
    const jwt = parseJwt(issued.token);
    const key = ring.signer();
    assert.deepEqual(jwt.header, { typ: 'JWT', alg: 'ES256', kid: key.kid, x5c: [key.x5c] });
    const c = jwt.claims;
    assert.equal(c.iss, 'berth');
    assert.equal(c.sub, 'alice');
    assert.equal(c.aud, 'registry.test');
    assert.equal(c.iat, Math.floor(t / 1000));
    assert.equal(c.nbf, c.iat);
    assert.equal(c.exp, c.iat! + 300);
    assert.match(c.jti!, /^[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(c.access, pull);
    assert.deepEqual(c.berth, { kind: 'user', id: 7, admin: false, pat: 42, scopes: ['read', 'write'] });
    assert.equal(issued.expiresIn, 300);
    assert.equal(issued.issuedAt.getTime(), c.iat! * 1000);
    // Independently: the x5c certificate's key verifies the r||s signature.
    const cert = new X509Certificate(Buffer.from(jwt.header.x5c![0]!, 'base64'));
    assert.equal(jwt.signature.length, 64);
    assert.ok(verify('sha256', Buffer.from(jwt.signingInput), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, jwt.signature));
    assert.notEqual((await issuer().issue(alice, pull)).token, issued.token, 'a fresh jti each time');
  });

  it('verify once, then come from the cache until they expire', async () => {
    t = Math.floor(Date.now() / 1000) * 1000;
    const v = new TokenVerifier(settings());
    const { token } = await issuer().issue(alice, pull);
    for (let i = 0; i < 3; i++) {
      const r = await v.verify(token);
      assert.ok(r.ok);
      assert.deepEqual(r.principal, { kind: 'granted', subject: 'alice', access: pull });
      assert.deepEqual(r.holder, alice);
    }
    assert.deepEqual(v.stats, { checked: 1, cached: 2 });
    t += 300_000 + 10_000 - 1;
    assert.ok((await v.verify(token)).ok, 'within the leeway');
    t += 1;
    assert.deepEqual(await v.verify(token), { ok: false, reason: 'expired' });
    assert.deepEqual(await new TokenVerifier(settings()).verify(token), { ok: false, reason: 'expired' }, 'uncached too');
  });

  it('the cache is bounded', async () => {
    t = Date.now();
    const v = new TokenVerifier({ ...settings(), cacheSize: 2 });
    const tokens = await Promise.all([0, 1, 2].map(() => issuer().issue(alice, pull)));
    for (const { token } of tokens) assert.ok((await v.verify(token)).ok);
    assert.ok((await v.verify(tokens[2]!.token)).ok);
    assert.deepEqual(v.stats, { checked: 3, cached: 1 });
    assert.ok((await v.verify(tokens[0]!.token)).ok);
    assert.deepEqual(v.stats, { checked: 4, cached: 1 }, 'the oldest was forgotten');
  });

  it('refuses tampering, other keys, other algorithms, wrong issuer or audience, tokens not yet valid', async () => {
    t = Date.now();
    const v = new TokenVerifier(settings());
    const { token } = await issuer().issue(alice, pull);
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const more = b64url(JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] }));
    assert.deepEqual(await v.verify(`${h}.${more}.${s}`), { ok: false, reason: 'signature' });
    const header = parseJwt(token).header;
    // Encoded and read back, as keys.ts makes its keys (node 20 can deadlock exporting a key its generation job still shares).
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { format: 'der', type: 'pkcs8' }, publicKeyEncoding: { format: 'der', type: 'spki' } }).privateKey;
    const other = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    assert.deepEqual(await v.verify(signJwt(header, claims, other)), { ok: false, reason: 'signature' }, 'same kid, another key');
    assert.deepEqual(await v.verify(signJwt({ ...header, kid: 'nope' }, claims, other)), { ok: false, reason: 'unknown key' });
    assert.deepEqual(await v.verify(`${b64url(JSON.stringify({ ...header, alg: 'none' }))}.${p}.`), { ok: false, reason: 'signature' });
    assert.deepEqual(await v.verify(`${b64url(JSON.stringify({ ...header, alg: 'HS256' }))}.${p}.${s}`), { ok: false, reason: 'signature' });
    assert.deepEqual(await v.verify('not.a.token!'), { ok: false, reason: 'malformed' });
    assert.deepEqual(await v.verify('abc'), { ok: false, reason: 'malformed' });
    assert.deepEqual(await new TokenVerifier({ ...settings(), issuer: 'other' }).verify(token), { ok: false, reason: 'issuer' });
    assert.deepEqual(await new TokenVerifier({ ...settings(), service: 'other' }).verify(token), { ok: false, reason: 'audience' });
    const early = await issuer().issue(alice, pull);
    t -= 11_000;
    assert.deepEqual(await new TokenVerifier(settings()).verify(early.token), { ok: false, reason: 'not yet valid' });
    // A token of a well-formed JWT but without the berth claim is not one of ours.
    t = Date.now();
    const bare = signJwt(header, { ...claims, berth: undefined }, ring.signer().privateKey!);
    assert.deepEqual(await v.verify(bare), { ok: false, reason: 'not berth' });
  });

  it('a retired key\'s tokens stop verifying, cached or not; a rotation elsewhere is found by kid', async () => {
    t = Date.now();
    const store2 = await MetadataStore.open({ sqlitePath: ':memory:' });
    try {
      const a = await KeyRing.open(new SigningKeyQueries(store2));
      const b = await KeyRing.open(new SigningKeyQueries(store2), { reloadIntervalMs: 3600_000 });
      const issueA = new TokenIssuer({ keys: a, issuer: 'berth', service: 's', lifetimeMs: 60_000 });
      const verifyB = new TokenVerifier({ keys: b, issuer: 'berth', service: 's' });
      const old = await issueA.issue(alice, pull);
      assert.ok((await verifyB.verify(old.token)).ok);
      await a.rotate();
      const rotated = await issueA.issue(alice, pull);
      assert.notEqual(parseJwt(rotated.token).header.kid, parseJwt(old.token).header.kid);
      assert.ok((await verifyB.verify(rotated.token)).ok, 'b reads the keys again for an unknown kid');
      await a.retire(parseJwt(old.token).header.kid!);
      await b.reload();
      assert.deepEqual(await verifyB.verify(old.token), { ok: false, reason: 'unknown key' });
    } finally {
      await store2.close();
    }
  });

  it('asks CredentialStatus, keeps its answer for a second, shares one question among concurrent requests', async () => {
    t = Date.now();
    const status = new FakeStatus();
    const v = new TokenVerifier({ ...settings(), status });
    const { token } = await issuer().issue(alice, pull);
    const results = await Promise.all([0, 1, 2, 3].map(() => v.verify(token)));
    assert.ok(results.every((r) => r.ok));
    assert.equal(status.calls, 1);
    status.revoked.add('user:7:42');
    t += 999;
    assert.ok((await v.verify(token)).ok, 'the answer is kept for a second');
    t += 1;
    assert.deepEqual(await v.verify(token), { ok: false, reason: 'revoked' });
    assert.equal(status.calls, 2);
    // A failing check is not remembered.
    status.revoked.clear();
    status.fail = true;
    t += 1000;
    await assert.rejects(v.verify(token), /database down/);
    status.fail = false;
    assert.ok((await v.verify(token)).ok);
    // Anonymous tokens have nothing to revoke.
    const anon = await issuer().issue({ kind: 'anonymous' }, pull);
    const calls = status.calls;
    const r = await v.verify(anon.token);
    assert.ok(r.ok);
    assert.deepEqual(r.holder, { kind: 'anonymous' });
    assert.equal(r.principal.subject, '');
    assert.equal(status.calls, calls);
  });

  it('known: a cached token with a settled, fresh CredentialStatus answer is decided without waiting; anything else is left to verify', async () => {
    t = Date.now();
    const status = new FakeStatus();
    const v = new TokenVerifier({ ...settings(), status });
    const { token } = await issuer().issue(alice, pull);
    assert.equal(v.known(token), undefined, 'never verified');
    const pending = v.verify(token);
    assert.equal(v.known(token), undefined, 'its status answer has not arrived');
    const first = await pending;
    assert.ok(first.ok);
    const known = v.known(token);
    assert.deepEqual(known, first);
    assert.deepEqual(v.stats, { checked: 1, cached: 1 });
    assert.equal(v.known(`${token} `), undefined, 'another string');
    // The cache is keyed by the token's end: a token that ends the same but says more is not taken from it.
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${b64url(JSON.stringify({ ...claims, access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }] }))}.${s}`;
    assert.equal(forged.slice(-64), token.slice(-64));
    assert.equal(v.known(forged), undefined);
    assert.deepEqual(await v.verify(forged), { ok: false, reason: 'signature' });
    assert.deepEqual(v.known(token), first, 'the real one is still known');
    // A revocation: known says so once the new answer has arrived, not before.
    status.revoked.add('user:7:42');
    t += 1000;
    assert.equal(v.known(token), undefined, 'the answer is a second old');
    assert.deepEqual(await v.verify(token), { ok: false, reason: 'revoked' });
    assert.deepEqual(v.known(token), { ok: false, reason: 'revoked' });
    // Expired: left to verify, which says why.
    status.revoked.clear();
    t += 300_000 + 10_000;
    assert.equal(v.known(token), undefined);
    assert.deepEqual(await v.verify(token), { ok: false, reason: 'expired' });
    // Without CredentialStatus (or for anonymous tokens) there is no answer to wait for.
    t = Date.now();
    const bare = new TokenVerifier(settings());
    const anon = await issuer().issue({ kind: 'anonymous' }, pull);
    assert.ok((await bare.verify(anon.token)).ok);
    assert.ok(bare.known(anon.token)?.ok);
  });
});

describe('the berth claim', () => {
  it('rebuilds every kind of principal it is made from', () => {
    const cases: Principal[] = [
      { kind: 'anonymous' },
      { kind: 'htpasswd', name: 'ci' },
      { kind: 'user', id: 1, name: 'bob', admin: true },
      alice,
      { kind: 'robot', id: 9, name: 'acme+deploy', organization: 'acme' },
    ];
    for (const p of cases) {
      const sub = 'name' in p ? p.name : '';
      assert.deepEqual(holderOf(sub, JSON.parse(JSON.stringify(berthClaim(p)))), p);
    }
    assert.throws(() => berthClaim({ kind: 'granted', subject: 'x', access: [] }));
  });

  it('refuses claims Berth does not write', () => {
    for (const c of [null, 'user', {}, { kind: 'user' }, { kind: 'user', id: '1' }, { kind: 'robot', id: 1 }, { kind: 'admin' }, { kind: 'user', id: 1, pat: 'x' }]) {
      assert.equal(holderOf('bob', c), null, JSON.stringify(c));
    }
    assert.equal(holderOf('', { kind: 'user', id: 1 }), null, 'a user needs a name');
  });
});
