import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { jwkThumbprint, keyFromJwk, libtrustKeyId, publicJwk } from './jwk.js';

describe('JWK thumbprints', () => {
  it('match RFC 7638 section 3.1\'s example', () => {
    const n =
      '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw';
    assert.equal(jwkThumbprint({ kty: 'RSA', n, e: 'AQAB', alg: 'RS256', kid: '2011-04-29' }), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    // The same through a key object.
    assert.equal(jwkThumbprint(keyFromJwk({ kty: 'RSA', n, e: 'AQAB' })), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('hash an EC key\'s own coordinates (two keys, two thumbprints)', () => {
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicJwk(a.publicKey);
    const expected = createHash('sha256').update(`{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`).digest('base64url');
    assert.equal(jwkThumbprint(a.publicKey), expected);
    assert.equal(jwkThumbprint(a.privateKey), expected, 'a private key thumbprints as its public half');
    assert.notEqual(jwkThumbprint(b.publicKey), expected);
    assert.equal(expected.length, 43);
  });

  it('round-trips public keys through JWK', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.ok(keyFromJwk(publicJwk(publicKey)).equals(publicKey));
  });

  it('libtrust key ids: 12 groups of 4 base32 characters over the SPKI hash', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = libtrustKeyId(publicKey);
    assert.match(id, /^[A-Z2-7]{4}(:[A-Z2-7]{4}){11}$/);
    // The first 5 bits are the top bits of the hash's first byte.
    const first = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest()[0]!;
    assert.equal(id[0], 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[first >> 3]);
  });
});
