/**
 * Compact JWS/JWT (RFC 7515, 7519) over node:crypto: signing with ES256 (or
 * RS256 for an RSA key from a file), parsing, and checking a signature with
 * a key whose type must match the algorithm (no `none`, no HMAC: a token
 * server signs with a private key and the registry holds only public ones).
 */
import { sign, verify, constants, type KeyObject } from 'node:crypto';
import type { GrantedAccess } from '../../access/types.js';

export interface JwtHeader {
  typ?: string;
  alg: string;
  kid?: string;
  x5c?: string[];
  jwk?: Record<string, unknown>;
  [name: string]: unknown;
}

/** The claims of a registry token (Docker token specification, jwt.md) and Berth's own. */
export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  jti?: string;
  access?: GrantedAccess[];
  [name: string]: unknown;
}

export interface ParsedJwt {
  header: JwtHeader;
  claims: JwtClaims;
  /** `header.payload`, the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

export class MalformedTokenError extends Error {
  constructor(why: string) {
    super(`malformed token: ${why}`);
    this.name = 'MalformedTokenError';
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function decodeSegment(segment: string, what: string): Buffer {
  // Node's decoder skips characters outside the alphabet; a token must not carry any.
  if (!B64URL.test(segment) || segment.length % 4 === 1) throw new MalformedTokenError(`${what} is not base64url`);
  return Buffer.from(segment, 'base64url');
}

function decodeJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeSegment(segment, what).toString('utf8'));
  } catch (err) {
    if (err instanceof MalformedTokenError) throw err;
    throw new MalformedTokenError(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedTokenError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWT; checks shapes, not trust. */
/** parseJwt, or null when `raw` is not a well-formed JWT (what verifiers answer as "malformed"). */
export function tryParseJwt(raw: string): ParsedJwt | null {
  try {
    return parseJwt(raw);
  } catch (err) {
    if (err instanceof MalformedTokenError) return null;
    throw err;
  }
}

export function parseJwt(raw: string): ParsedJwt {
  if (raw.length > 64 * 1024) throw new MalformedTokenError('too long');
  const parts = raw.split('.');
  if (parts.length !== 3) throw new MalformedTokenError('not three dot-separated parts');
  const header = decodeJson(parts[0]!, 'header') as JwtHeader;
  const claims = decodeJson(parts[1]!, 'payload') as JwtClaims;
  const signature = decodeSegment(parts[2]!, 'signature');
  if (typeof header.alg !== 'string') throw new MalformedTokenError('no alg');
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new MalformedTokenError('kid is not a string');
  if (header.x5c !== undefined && (!Array.isArray(header.x5c) || header.x5c.length === 0 || !header.x5c.every((c) => typeof c === 'string'))) {
    throw new MalformedTokenError('x5c is not a list of certificates');
  }
  if (header.jwk !== undefined && (typeof header.jwk !== 'object' || header.jwk === null || Array.isArray(header.jwk))) throw new MalformedTokenError('jwk is not an object');
  for (const c of ['exp', 'nbf', 'iat'] as const) {
    if (claims[c] !== undefined && (typeof claims[c] !== 'number' || !Number.isFinite(claims[c]))) throw new MalformedTokenError(`${c} is not a number`);
  }
  for (const c of ['iss', 'sub', 'jti'] as const) {
    if (claims[c] !== undefined && typeof claims[c] !== 'string') throw new MalformedTokenError(`${c} is not a string`);
  }
  const aud = claims.aud;
  if (aud !== undefined && typeof aud !== 'string' && !(Array.isArray(aud) && aud.every((a) => typeof a === 'string'))) throw new MalformedTokenError('aud is neither a string nor a list of strings');
  if (claims.access !== undefined && claims.access !== null) {
    const ok =
      Array.isArray(claims.access) &&
      claims.access.every(
        (a) => typeof a === 'object' && a !== null && typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions) && a.actions.every((x) => typeof x === 'string'),
      );
    if (!ok) throw new MalformedTokenError('access is not a list of {type, name, actions}');
  }
  return { header, claims, signingInput: `${parts[0]}.${parts[1]}`, signature };
}

interface Algorithm {
  hash: string | null;
  check(key: KeyObject): boolean;
  options?: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
}

const curve = (key: KeyObject, name: string) => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === name;
const rsa = (key: KeyObject) => key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048;

const ALGORITHMS: Record<string, Algorithm> = {
  // JWS (RFC 7518 3.4) signs ECDSA as r || s, not DER.
  ES256: { hash: 'sha256', check: (k) => curve(k, 'prime256v1'), options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { hash: 'sha384', check: (k) => curve(k, 'secp384r1'), options: { dsaEncoding: 'ieee-p1363' } },
  ES512: { hash: 'sha512', check: (k) => curve(k, 'secp521r1'), options: { dsaEncoding: 'ieee-p1363' } },
  RS256: { hash: 'sha256', check: rsa },
  RS384: { hash: 'sha384', check: rsa },
  RS512: { hash: 'sha512', check: rsa },
  PS256: { hash: 'sha256', check: rsa, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  PS384: { hash: 'sha384', check: rsa, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 } },
  PS512: { hash: 'sha512', check: rsa, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 } },
  EdDSA: { hash: null, check: (k) => k.asymmetricKeyType === 'ed25519' },
};

export const SUPPORTED_ALGORITHMS = Object.keys(ALGORITHMS);

/** The algorithm Berth signs with for a key of its own: ES256 for P-256, RS256 for RSA. */
export function algorithmFor(key: KeyObject): 'ES256' | 'RS256' {
  if (curve(key, 'prime256v1')) return 'ES256';
  if (rsa(key)) return 'RS256';
  throw new Error('a signing key must be EC P-256 or RSA of at least 2048 bits');
}

/** Whether `signature` over `input` verifies with `key` under `alg`; false for an unknown algorithm or a key of another type. */
export function verifySignature(alg: string, key: KeyObject, input: string, signature: Buffer): boolean {
  const a = Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg]! : undefined;
  if (!a || !a.check(key)) return false;
  try {
    return verify(a.hash, Buffer.from(input), { key, ...a.options }, signature);
  } catch {
    return false;
  }
}

/** A signed compact JWT. */
export function signJwt(header: JwtHeader, claims: JwtClaims, privateKey: KeyObject): string {
  const a = ALGORITHMS[header.alg];
  if (!a || !a.check(privateKey)) throw new Error(`cannot sign ${header.alg} with this key`);
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign(a.hash, Buffer.from(input), { key: privateKey, ...a.options });
  return `${input}.${b64url(signature)}`;
}
