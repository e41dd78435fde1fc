/**
 * Public keys as JSON Web Keys, their RFC 7638 thumbprints (the `kid`
 * distribution 3 matches and a JWKS document names keys by) and the
 * libtrust key id distribution 2 used for `kid`.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  kid?: string;
  use?: string;
  alg?: string;
  x5c?: string[];
}

/** The public members of a key as a JWK (EC, RSA or OKP). */
export function publicJwk(key: KeyObject): PublicJwk {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as JsonWebKey;
  switch (jwk.kty) {
    case 'EC':
      return { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
    case 'RSA':
      return { kty: 'RSA', n: jwk.n!, e: jwk.e! };
    case 'OKP':
      return { kty: 'OKP', crv: jwk.crv!, x: jwk.x! };
    default:
      throw new Error(`unsupported key type ${String(jwk.kty)}`);
  }
}

/**
 * RFC 7638: SHA-256 over the required members in lexicographic order, no
 * whitespace, base64url without padding. JSON.stringify of an object built
 * in that order is exactly that (the values are base64url and names only).
 */
export function jwkThumbprint(key: KeyObject | PublicJwk): string {
  const jwk = 'kty' in key ? key : publicJwk(key);
  let members: Record<string, string>;
  switch (jwk.kty) {
    case 'EC':
      members = { crv: jwk.crv!, kty: 'EC', x: jwk.x!, y: jwk.y! };
      break;
    case 'RSA':
      members = { e: jwk.e!, kty: 'RSA', n: jwk.n! };
      break;
    case 'OKP':
      members = { crv: jwk.crv!, kty: 'OKP', x: jwk.x! };
      break;
    default:
      throw new Error(`unsupported key type ${jwk.kty}`);
  }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * libtrust's key id (docker/libtrust, what distribution 2.x compares a
 * token's `kid` with): the first 240 bits of SHA-256 over the DER
 * SubjectPublicKeyInfo, base32, in 12 groups of 4 joined by ':'.
 */
export function libtrustKeyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const digest = createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join(':');
}

/** A public key from a JWK (as a JWKS file or a token's `jwk` header holds it). */
export function keyFromJwk(jwk: PublicJwk): KeyObject {
  const { kty, crv, x, y, n, e } = jwk;
  return createPublicKey({ key: { kty, crv, x, y, n, e } as JsonWebKey, format: 'jwk' });
}
