// Berth as the token server of a registry:2 fleet: Debian's docker-registry
// (distribution 2.8), given Berth's certificate bundle as
// auth.token.rootcertbundle, accepts Berth-issued tokens (x5c chain) and
// refuses tokens signed by any other key.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { GrantedAccess } from '../../src/access/types.js';
import { selfSignedCertificate } from '../../src/auth/token/certificate.js';
import { jwkThumbprint } from '../../src/auth/token/jwk.js';
import { parseJwt, signJwt } from '../../src/auth/token/jwt.js';
import { KeyRing } from '../../src/auth/token/keys.js';
import { TokenIssuer } from '../../src/auth/token/tokens.js';
import { SigningKeyQueries } from '../../src/metadata/keys.js';
import { MetadataStore } from '../../src/metadata/store.js';
import { startReferenceRegistry, type ReferenceRegistry } from '../support/reference-registry.js';

const SERVICE = 'registry.test';
const REALM = 'http://127.0.0.1:1/token';

describe('distribution 2.8 trusts Berth-issued tokens', () => {
  let store: MetadataStore;
  let keys: KeyRing;
  let issuer: TokenIssuer;
  let registry: ReferenceRegistry;
  before(async () => {
    store = await MetadataStore.open({ sqlitePath: ':memory:' });
    keys = await KeyRing.open(new SigningKeyQueries(store));
    issuer = new TokenIssuer({ keys, issuer: 'berth', service: SERVICE, lifetimeMs: 300_000 });
    registry = await startReferenceRegistry({ tokenAuth: { realm: REALM, service: SERVICE, issuer: 'berth', rootCertBundle: keys.certificateBundle() } });
  });
  after(async () => {
    await registry?.stop();
    await store?.close();
  });

  const token = async (access: GrantedAccess[]) => (await issuer.issue({ kind: 'user', id: 1, name: 'alice', admin: false }, access)).token;
  const req = (p: string, bearer?: string, init: RequestInit = {}) =>
    fetch(`http://${registry.base}${p}`, { ...init, headers: { ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}), ...(init.headers as Record<string, string> | undefined) } });

  it('GET /v2/ asks for a Berth token and takes the one docker login gets (no access)', async () => {
    const anon = await req('/v2/');
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get('www-authenticate'), `Bearer realm="${REALM}",service="${SERVICE}"`);
    const res = await req('/v2/', await token([]));
    assert.equal(res.status, 200, await res.text());
  });

  it('push and pull a blob with a token for push and pull; a pull-only token cannot push', async () => {
    const body = Buffer.from(`interop ${Date.now()}`);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const pullOnly = await token([{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    const denied = await req('/v2/alice/app/blobs/uploads/', pullOnly, { method: 'POST' });
    assert.equal(denied.status, 401);
    // distribution lists the actions in Go map order, which differs from run to run.
    assert.match(denied.headers.get('www-authenticate') ?? '', /scope="repository:alice\/app:(pull,push|push,pull)",error="insufficient_scope"/);

    const both = await token([{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }]);
    const start = await req('/v2/alice/app/blobs/uploads/', both, { method: 'POST' });
    assert.equal(start.status, 202, await start.text());
    const location = new URL(start.headers.get('location')!, `http://${registry.base}`);
    location.searchParams.set('digest', digest);
    const put = await req(location.pathname + location.search, both, { method: 'PUT', body, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(put.status, 201, await put.text());
    const get = await req(`/v2/alice/app/blobs/${digest}`, pullOnly);
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), body);
    // Another repository is not covered by the token.
    assert.equal((await req(`/v2/bob/app/blobs/${digest}`, pullOnly)).status, 401);
  });

  it('refuses a token signed by another key, with or without its own certificate, and a token for another service', async () => {
    const good = await token([{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    const { header, claims } = parseJwt(good);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cert = selfSignedCertificate({ ...other, commonName: `berth token signer ${jwkThumbprint(other.publicKey)}`, notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3600_000) });
    const forgedSameHeader = signJwt(header, claims, other.privateKey);
    const forgedOwnCert = signJwt({ ...header, kid: jwkThumbprint(other.publicKey), x5c: [cert.toString('base64')] }, claims, other.privateKey);
    for (const t of [forgedSameHeader, forgedOwnCert]) {
      const res = await req('/v2/alice/app/tags/list', t);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    const elsewhere = await new TokenIssuer({ keys, issuer: 'berth', service: 'other', lifetimeMs: 60_000 }).issue({ kind: 'anonymous' }, []);
    assert.equal((await req('/v2/', elsewhere.token)).status, 401);
    // And the genuine token still works for what it grants.
    assert.equal((await req('/v2/alice/app/tags/list', good)).status, 404, 'authorized; the repository has no tags');
  });
});
