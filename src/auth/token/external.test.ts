import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCA, type TestCA } from '../../../test/support/tls.js';
import { SigningKeyQueries } from '../../metadata/keys.js';
import { MetadataStore } from '../../metadata/store.js';
import { selfSignedCertificate } from './certificate.js';
import { ExternalTokenValidator } from './external.js';
import { jwkThumbprint, libtrustKeyId, publicJwk } from './jwk.js';
import { signJwt, type JwtClaims, type JwtHeader } from './jwt.js';
import { KeyRing } from './keys.js';
import { TokenIssuer } from './tokens.js';

const access = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }];

describe('external token server (auth.token)', () => {
  let dir: string;
  let ca: TestCA;
  let leafKey: KeyObject;
  let leafDer: string;
  let caKey: KeyObject;
  let validator: ExternalTokenValidator;
  let jwksKey: KeyObject;
  const now = () => Date.now();
  const claims = (over: Partial<JwtClaims> = {}): JwtClaims => {
    const t = Math.floor(Date.now() / 1000);
    return { iss: 'auth.example.com', sub: 'carol', aud: 'registry.example.com', exp: t + 300, nbf: t, iat: t, jti: 'j1', access, ...over };
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-external-'));
    ca = await createCA(path.join(dir, 'ca'), 'Token Server Root');
    const leaf = await ca.clientCert('token-signer');
    leafKey = createPrivateKey(await readFile(leaf.key, 'utf8'));
    leafDer = new X509Certificate(await readFile(leaf.cert)).raw.toString('base64');
    caKey = createPrivateKey(await readFile(ca.key, 'utf8'));
    jwksKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await writeFile(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...publicJwk(jwksKey), kid: 'jwks-key-1', use: 'sig' }] }));
    validator = await ExternalTokenValidator.load({
      realm: 'https://auth.example.com/token',
      service: 'registry.example.com',
      issuer: 'auth.example.com',
      rootcertbundle: ca.cert,
      jwks: path.join(dir, 'jwks.json'),
      signingalgorithms: [],
      autoredirect: false,
    });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const x5cHeader = (): JwtHeader => ({ typ: 'JWT', alg: 'ES256', x5c: [leafDer] });

  it('accepts a token whose x5c leaf chains to the root bundle; its access list becomes a granted principal', async () => {
    const r = await validator.verify(signJwt(x5cHeader(), claims(), leafKey));
    assert.deepEqual(r, { ok: true, principal: { kind: 'granted', subject: 'carol', access }, expiresAt: (claims().exp! + 60) * 1000 });
  });

  it('refuses the wrong issuer, audience, an expired token or one not yet valid (60 s leeway as distribution)', async () => {
    const t = Math.floor(Date.now() / 1000);
    const check = async (c: Partial<JwtClaims>) => validator.verify(signJwt(x5cHeader(), claims(c), leafKey));
    assert.deepEqual(await check({ iss: 'evil' }), { ok: false, reason: 'issuer' });
    assert.deepEqual(await check({ aud: 'other-registry' }), { ok: false, reason: 'audience' });
    assert.ok((await check({ aud: ['other', 'registry.example.com'] })).ok, 'aud may be a list');
    assert.deepEqual(await check({ exp: t - 61 }), { ok: false, reason: 'expired' });
    assert.ok((await check({ exp: t - 30 })).ok, 'within the leeway');
    assert.deepEqual(await check({ nbf: t + 120 }), { ok: false, reason: 'not yet valid' });
    assert.deepEqual(await check({ exp: undefined }), { ok: false, reason: 'no expiry' });
  });

  it('refuses chains to other roots, signatures by another key, unknown kids, algorithms not allowed', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const selfSigned = selfSignedCertificate({ ...other, commonName: 'Token Server Root', notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000) }).toString('base64');
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256', x5c: [selfSigned] }, claims(), other.privateKey)), { ok: false, reason: 'untrusted key' });
    assert.deepEqual(await validator.verify(signJwt(x5cHeader(), claims(), other.privateKey)), { ok: false, reason: 'signature' });
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256', kid: 'who' }, claims(), other.privateKey)), { ok: false, reason: 'untrusted key' });
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256' }, claims(), leafKey)), { ok: false, reason: 'untrusted key' }, 'no x5c, jwk or kid');
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256', x5c: ['not base64!'] }, claims(), leafKey)), { ok: false, reason: 'untrusted key' });
    // A jwk header naming an untrusted key.
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256', jwk: { ...publicJwk(other.publicKey) } }, claims(), other.privateKey)), { ok: false, reason: 'untrusted key' });
    const strict = new ExternalTokenValidator({ realm: 'https://a/token', service: 'registry.example.com', issuer: 'auth.example.com', roots: [new X509Certificate(await readFile(ca.cert))], algorithms: ['RS256'] });
    assert.deepEqual(await strict.verify(signJwt(x5cHeader(), claims(), leafKey)), { ok: false, reason: 'algorithm' });
    assert.deepEqual(await validator.verify('a.b'), { ok: false, reason: 'malformed' });
  });

  it('finds keys by kid: the bundle\'s RFC 7638 thumbprint or libtrust id, the jwks file\'s kid; or by a trusted jwk header', async () => {
    const caPublic = new X509Certificate(await readFile(ca.cert)).publicKey;
    assert.ok((await validator.verify(signJwt({ alg: 'ES256', kid: jwkThumbprint(caPublic) }, claims(), caKey))).ok);
    assert.ok((await validator.verify(signJwt({ alg: 'ES256', kid: libtrustKeyId(caPublic) }, claims(), caKey))).ok);
    assert.ok((await validator.verify(signJwt({ alg: 'ES256', kid: 'jwks-key-1' }, claims(), jwksKey))).ok);
    assert.ok((await validator.verify(signJwt({ alg: 'ES256', jwk: { ...publicJwk(jwksKey), kid: 'jwks-key-1' } }, claims(), jwksKey))).ok);
    assert.deepEqual(await validator.verify(signJwt({ alg: 'ES256', kid: 'jwks-key-1' }, claims(), caKey)), { ok: false, reason: 'signature' });
  });

  it('caches a verified token until it expires', async () => {
    const v = new ExternalTokenValidator({ realm: 'https://a/token', service: 'registry.example.com', issuer: 'auth.example.com', roots: [new X509Certificate(await readFile(ca.cert))], now });
    const token = signJwt(x5cHeader(), claims(), leafKey);
    for (let i = 0; i < 3; i++) assert.ok((await v.verify(token)).ok);
    assert.deepEqual(v.stats, { checked: 1, cached: 2 });
  });

  it('the challenge names the token server\'s realm and service', () => {
    assert.equal(validator.challenge(access, 'insufficient_scope'), 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push",error="insufficient_scope"');
  });

  it('trusts a Berth token server through its certificate bundle (Berth validating Berth)', async () => {
    const store = await MetadataStore.open({ sqlitePath: ':memory:' });
    try {
      const keys = await KeyRing.open(new SigningKeyQueries(store));
      const bundle = path.join(dir, 'berth-bundle.pem');
      await writeFile(bundle, keys.certificateBundle());
      const v = await ExternalTokenValidator.load({ realm: 'https://hub/token', service: 'mirror', issuer: 'berth', rootcertbundle: bundle, signingalgorithms: [], autoredirect: false });
      const issued = await new TokenIssuer({ keys, issuer: 'berth', service: 'mirror', lifetimeMs: 60_000 }).issue({ kind: 'user', id: 1, name: 'dave', admin: false }, access);
      assert.deepEqual(await v.verify(issued.token), { ok: true, principal: { kind: 'granted', subject: 'dave', access }, expiresAt: (Math.floor(issued.issuedAt.getTime() / 1000) + 60 + 60) * 1000 });
    } finally {
      await store.close();
    }
  });

  it('load() names the key of a file it cannot use', async () => {
    const base = { realm: 'https://a/token', service: 's', issuer: 'i', signingalgorithms: [], autoredirect: false };
    await assert.rejects(ExternalTokenValidator.load({ ...base, rootcertbundle: path.join(dir, 'missing.pem') }), /auth\.token\.rootcertbundle: cannot read/);
    await writeFile(path.join(dir, 'bad.json'), '{"nokeys": 1}');
    await assert.rejects(ExternalTokenValidator.load({ ...base, jwks: path.join(dir, 'bad.json') }), /auth\.token\.jwks: .* is not a JWKS document/);
    await writeFile(path.join(dir, 'empty.pem'), 'nothing here');
    await assert.rejects(ExternalTokenValidator.load({ ...base, rootcertbundle: path.join(dir, 'empty.pem') }), /at least one token signing key/);
  });
});
