/**
 * Tokens of an external token server (accounts off, `auth.token` set), as
 * distribution validates them: signed by a key whose certificate chains to
 * `rootcertbundle` (the `x5c` header), or whose `kid` (or `jwk` header)
 * names a key of the bundle (RFC 7638 thumbprint or libtrust key id) or of
 * the `jwks` file; issued by `issuer` for `service` (the audience), within
 * exp/nbf and distribution's 60 s leeway. The token's access list becomes a
 * `granted` principal. Verified tokens are cached until they expire.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { GrantedAccess, Principal } from '../../access/types.js';
import { bearerChallenge } from './challenge.js';
import { parsePemBundle } from './certificate.js';
import { accessOf, checkClaims, validUntil, type ClaimFailure } from './claims.js';
import { jwkThumbprint, keyFromJwk, libtrustKeyId, type PublicJwk } from './jwk.js';
import { tryParseJwt, SUPPORTED_ALGORITHMS, verifySignature, type JwtHeader } from './jwt.js';
import { Lru } from './lru.js';

/** distribution's `auth.token` keys. */
export interface TokenAuthConfig {
  realm: string;
  service: string;
  issuer: string;
  rootcertbundle?: string;
  jwks?: string;
  signingalgorithms: string[];
  autoredirect: boolean;
  autoredirectpath?: string;
}

export type ExternalFailure = 'malformed' | 'untrusted key' | 'signature' | 'algorithm' | ClaimFailure;

export type ExternalCheck = { ok: true; principal: Extract<Principal, { kind: 'granted' }>; expiresAt: number } | { ok: false; reason: ExternalFailure };

export interface ExternalValidatorOptions {
  realm: string;
  service: string;
  issuer: string;
  roots: X509Certificate[];
  jwks?: PublicJwk[];
  /** Accepted `alg` values; default: every one Berth verifies. */
  algorithms?: string[];
  /** distribution's leeway on exp and nbf: 60 s. */
  leewaySeconds?: number;
  cacheSize?: number;
  now?: () => number;
}

const MAX_CHAIN = 10;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export class ExternalTokenValidator {
  private readonly trusted = new Map<string, KeyObject>();
  private readonly cache: Lru<string, { principal: Extract<Principal, { kind: 'granted' }>; expiresAt: number }>;
  private readonly now: () => number;
  private readonly leeway: number;
  private readonly algorithms: Set<string>;
  readonly stats = { checked: 0, cached: 0 };

  constructor(private readonly opts: ExternalValidatorOptions) {
    this.now = opts.now ?? Date.now;
    this.leeway = opts.leewaySeconds ?? 60;
    this.algorithms = new Set(opts.algorithms && opts.algorithms.length > 0 ? opts.algorithms : SUPPORTED_ALGORITHMS);
    this.cache = new Lru(opts.cacheSize ?? 10_000);
    for (const root of opts.roots) {
      // Both generations' key ids: distribution 3's RFC 7638 thumbprint, distribution 2's libtrust id.
      this.trusted.set(jwkThumbprint(root.publicKey), root.publicKey);
      this.trusted.set(libtrustKeyId(root.publicKey), root.publicKey);
    }
    for (const jwk of opts.jwks ?? []) {
      const key = keyFromJwk(jwk);
      this.trusted.set(jwk.kid ?? jwkThumbprint(jwk), key);
    }
    if (this.trusted.size === 0) throw new Error('auth.token: at least one token signing key is needed (rootcertbundle or jwks)');
  }

  /** Reads `rootcertbundle` and `jwks` as distribution does; errors name the key. */
  static async load(config: TokenAuthConfig): Promise<ExternalTokenValidator> {
    let roots: X509Certificate[] = [];
    let jwks: PublicJwk[] | undefined;
    if (config.rootcertbundle) {
      let text: string;
      try {
        text = await readFile(config.rootcertbundle, 'utf8');
      } catch (err) {
        throw new Error(`auth.token.rootcertbundle: cannot read ${config.rootcertbundle}: ${(err as Error).message}`);
      }
      try {
        roots = parsePemBundle(text);
      } catch (err) {
        throw new Error(`auth.token.rootcertbundle: ${config.rootcertbundle} holds a certificate that cannot be parsed: ${(err as Error).message}`);
      }
    }
    if (config.jwks) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(config.jwks, 'utf8'));
      } catch (err) {
        throw new Error(`auth.token.jwks: cannot read ${config.jwks} as JSON: ${(err as Error).message}`);
      }
      const keys = (parsed as { keys?: unknown } | null)?.keys;
      if (!Array.isArray(keys)) throw new Error(`auth.token.jwks: ${config.jwks} is not a JWKS document ({"keys": [...]})`);
      jwks = keys as PublicJwk[];
      jwks.forEach((k, i) => {
        try {
          keyFromJwk(k);
        } catch (err) {
          throw new Error(`auth.token.jwks: key ${i} of ${config.jwks} is not a public key: ${(err as Error).message}`);
        }
      });
    }
    return new ExternalTokenValidator({ realm: config.realm, service: config.service, issuer: config.issuer, roots, jwks, algorithms: config.signingalgorithms });
  }

  /** The challenge of a registry behind this token server: its realm and service. */
  challenge(scope?: readonly GrantedAccess[], error?: 'invalid_token' | 'insufficient_scope'): string {
    return bearerChallenge({ realm: this.opts.realm, service: this.opts.service, scope, error });
  }

  async verify(raw: string): Promise<ExternalCheck> {
    const now = this.now();
    const hit = this.cache.get(raw);
    if (hit) {
      if (now < hit.expiresAt) {
        this.stats.cached++;
        return { ok: true, ...hit };
      }
      this.cache.delete(raw);
      return { ok: false, reason: 'expired' };
    }
    this.stats.checked++;
    const jwt = tryParseJwt(raw);
    if (!jwt) return { ok: false, reason: 'malformed' };
    if (!this.algorithms.has(jwt.header.alg)) return { ok: false, reason: 'algorithm' };
    const key = this.signingKey(jwt.header, now);
    if (!key) return { ok: false, reason: 'untrusted key' };
    if (!verifySignature(jwt.header.alg, key, jwt.signingInput, jwt.signature)) return { ok: false, reason: 'signature' };
    const failure = checkClaims(jwt.claims, { issuer: this.opts.issuer, audience: this.opts.service, leewaySeconds: this.leeway, now });
    if (failure) return { ok: false, reason: failure };
    const verified = { principal: { kind: 'granted' as const, subject: jwt.claims.sub ?? '', access: accessOf(jwt.claims) }, expiresAt: validUntil(jwt.claims, this.leeway) };
    this.cache.set(raw, verified);
    return { ok: true, ...verified };
  }

  /** The key that signed the token, if trusted: x5c chain first, then the jwk header, then kid. */
  private signingKey(header: JwtHeader, now: number): KeyObject | null {
    if (header.x5c) return this.verifyChain(header.x5c, now);
    if (header.jwk) {
      let jwk: PublicJwk;
      let key: KeyObject;
      try {
        jwk = header.jwk as unknown as PublicJwk;
        key = keyFromJwk(jwk);
      } catch {
        return null;
      }
      if (Array.isArray(jwk.x5c) && jwk.x5c.length > 0) {
        const leaf = this.verifyChain(jwk.x5c, now);
        return leaf && leaf.equals(key) ? key : null;
      }
      const trusted = this.trusted.get(jwk.kid ?? '') ?? this.trusted.get(jwkThumbprint(jwk));
      return trusted && trusted.equals(key) ? trusted : null;
    }
    if (header.kid) return this.trusted.get(header.kid) ?? null;
    return null;
  }

  /** The leaf's key when the chain (leaf first, then intermediates) leads to a root of the bundle, every certificate within its validity. */
  private verifyChain(x5c: unknown[], now: number): KeyObject | null {
    let chain: X509Certificate[];
    try {
      chain = x5c.slice(0, MAX_CHAIN).map((c) => {
        if (typeof c !== 'string' || !BASE64.test(c)) throw new Error('not base64');
        return new X509Certificate(Buffer.from(c, 'base64'));
      });
    } catch {
      return null;
    }
    const current = (c: X509Certificate) => new Date(c.validFrom).getTime() <= now && now <= new Date(c.validTo).getTime();
    if (chain.length === 0 || !chain.every(current)) return null;
    const leaf = chain[0]!;
    let cert = leaf;
    const used = new Set<X509Certificate>([leaf]);
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      if (this.opts.roots.some((r) => r.raw.equals(cert.raw))) return leaf.publicKey;
      const root = this.opts.roots.find((r) => current(r) && r.ca && cert.checkIssued(r) && cert.verify(r.publicKey));
      if (root) return leaf.publicKey;
      const next = chain.find((c) => !used.has(c) && c.ca && cert.checkIssued(c) && cert.verify(c.publicKey));
      if (!next) return null;
      used.add(next);
      cert = next;
    }
    return null;
  }
}
