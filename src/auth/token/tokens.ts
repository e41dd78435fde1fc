/**
 * Berth's own access tokens: issued by the token endpoint, verified on
 * every registry request. A JWT signed ES256 with the key ring's current
 * key, carrying `kid` (RFC 7638 thumbprint, what distribution 3 matches) and
 * `x5c` (the key's self-signed certificate, what distribution 2 checks
 * against its rootcertbundle), so a registry:2 fleet can trust Berth too.
 *
 * Verification is cached: a token's signature is checked once and the
 * result kept (bounded LRU) until the token expires, so a request with a
 * known token costs a map lookup. What the cache cannot know, whether the
 * credential behind the token was revoked since, is asked of
 * CredentialStatus, whose answer is kept for `statusTtlMs` (1 s): a
 * revoked personal access token or robot, or a deleted account, stops
 * working within a second on every replica.
 */
import { randomBytes } from 'node:crypto';
import type { GrantedAccess, Principal, TokenScope } from '../../access/types.js';
import { accessOf, checkClaims, validUntil, type ClaimFailure } from './claims.js';
import { tryParseJwt, signJwt, verifySignature, type JwtClaims } from './jwt.js';
import type { KeyRing } from './keys.js';
import { Lru } from './lru.js';
import type { CredentialStatus } from './types.js';

/**
 * The private `berth` claim: what rebuilds the principal a token was issued
 * to, so CredentialStatus can check it (account id and kind, PAT id and
 * scopes, robot id and organization). `sub` carries the name.
 */
export interface BerthClaim {
  kind: 'user' | 'robot' | 'htpasswd' | 'anonymous';
  /** Account id (user or robot). */
  id?: number;
  admin?: boolean;
  /** Personal access token id and scopes, when one was used. */
  pat?: number;
  scopes?: TokenScope[];
  /** A robot's organization. */
  org?: string;
}

export function berthClaim(p: Principal): BerthClaim {
  switch (p.kind) {
    case 'anonymous':
      return { kind: 'anonymous' };
    case 'htpasswd':
      return { kind: 'htpasswd' };
    case 'user':
      return p.token ? { kind: 'user', id: p.id, admin: p.admin, pat: p.token.id, scopes: p.token.scopes } : { kind: 'user', id: p.id, admin: p.admin };
    case 'robot':
      return { kind: 'robot', id: p.id, org: p.organization };
    case 'granted':
      throw new Error('a token is issued to an authenticated principal, not to the bearer of another token');
  }
}

function subjectOf(p: Principal): string {
  return p.kind === 'user' || p.kind === 'robot' || p.kind === 'htpasswd' ? p.name : '';
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The principal a token was issued to, from `sub` and the `berth` claim; null when the claim is not one Berth writes. */
export function holderOf(sub: string, claim: unknown): Principal | null {
  if (typeof claim !== 'object' || claim === null) return null;
  const c = claim as Record<string, unknown>;
  switch (c.kind) {
    case 'anonymous':
      return { kind: 'anonymous' };
    case 'htpasswd':
      return sub ? { kind: 'htpasswd', name: sub } : null;
    case 'user': {
      if (!isInt(c.id) || !sub) return null;
      const user: Principal = { kind: 'user', id: c.id, name: sub, admin: c.admin === true };
      if (c.pat !== undefined) {
        const scopes = Array.isArray(c.scopes) ? c.scopes.filter((s): s is TokenScope => s === 'read' || s === 'write' || s === 'delete') : [];
        if (!isInt(c.pat)) return null;
        user.token = { id: c.pat, scopes };
      }
      return user;
    }
    case 'robot':
      return isInt(c.id) && sub && typeof c.org === 'string' ? { kind: 'robot', id: c.id, name: sub, organization: c.org } : null;
    default:
      return null;
  }
}

export interface IssuedToken {
  token: string;
  /** Seconds. */
  expiresIn: number;
  issuedAt: Date;
  access: GrantedAccess[];
}

export interface TokenSettings {
  keys: KeyRing;
  /** `iss`: auth.accounts.issuer. */
  issuer: string;
  /** `aud`: the service, auth.accounts.service. */
  service: string;
  /** auth.accounts.tokenlifetime, ms. */
  lifetimeMs: number;
  now?: () => number;
}

export class TokenIssuer {
  private readonly now: () => number;

  constructor(private readonly settings: TokenSettings) {
    this.now = settings.now ?? Date.now;
  }

  async issue(principal: Principal, access: GrantedAccess[]): Promise<IssuedToken> {
    const { keys, issuer, service, lifetimeMs } = this.settings;
    await keys.fresh();
    const key = keys.signer();
    const now = this.now();
    const iat = Math.floor(now / 1000);
    const expiresIn = Math.max(1, Math.round(lifetimeMs / 1000));
    const claims: JwtClaims = {
      iss: issuer,
      sub: subjectOf(principal),
      // A string, not a list: distribution 2.x reads `aud` as one string.
      aud: service,
      exp: iat + expiresIn,
      nbf: iat,
      iat,
      jti: randomBytes(16).toString('base64url'),
      access,
      berth: berthClaim(principal),
    };
    const token = signJwt({ typ: 'JWT', alg: key.algorithm, kid: key.kid, x5c: [key.x5c] }, claims, key.privateKey!);
    return { token, expiresIn, issuedAt: new Date(iat * 1000), access };
  }
}

export type VerifyFailure = 'malformed' | 'unknown key' | 'signature' | 'not berth' | 'revoked' | ClaimFailure;

export type TokenCheck =
  | {
      ok: true;
      /** The bearer: exactly the token's access list. */
      principal: Extract<Principal, { kind: 'granted' }>;
      /** Whom the token was issued to. */
      holder: Principal;
      /** ms since the epoch, leeway included. */
      expiresAt: number;
    }
  | { ok: false; reason: VerifyFailure };

interface Verified {
  /** The whole token: the cache is keyed by its end only (cacheKey). */
  raw: string;
  principal: Extract<Principal, { kind: 'granted' }>;
  holder: Principal;
  expiresAt: number;
  kid: string;
  /** The holder's key among the CredentialStatus answers, or null when there is nothing to revoke. */
  statusKey: string | null;
  /** The answer for a cached token, made once. */
  check: Extract<TokenCheck, { ok: true }>;
}

/** A CredentialStatus answer: `settled` once it arrived, so a cached token is decided without awaiting. */
interface Status {
  until: number;
  valid: Promise<boolean>;
  settled?: boolean;
}

export interface VerifierSettings extends Omit<TokenSettings, 'lifetimeMs'> {
  /** Asked (answer kept statusTtlMs) whether a user's or robot's credential still holds. */
  status?: CredentialStatus;
  /** Clock skew allowed on exp and nbf (default 10 s: Berth's replicas share one database clock within seconds). */
  leewaySeconds?: number;
  /** Verified tokens kept (default 10 000). */
  cacheSize?: number;
  /** How long a CredentialStatus answer is kept (default 1 s). */
  statusTtlMs?: number;
}

/**
 * The cache's key for a token: its last 64 characters (of the signature),
 * with the whole token compared on a hit. Hashing a string costs a pass over
 * it, and Berth's tokens are over a kilobyte (the x5c certificate), on every
 * request; a comparison of equal strings is a memcmp.
 */
function cacheKey(raw: string): string {
  return raw.length > 64 ? raw.slice(-64) : raw;
}

/** How often an unknown kid may make the key ring be read again (a rotation on another replica). */
const UNKNOWN_KID_RELOAD_MS = 1000;

export class TokenVerifier {
  private readonly cache: Lru<string, Verified>;
  private readonly statuses = new Map<string, Status>();
  private readonly now: () => number;
  private readonly leeway: number;
  private readonly statusTtlMs: number;
  /** Signature checks made, and requests answered from the cache. */
  readonly stats = { checked: 0, cached: 0 };
  private unknownKidReloadAt = 0;

  constructor(private readonly settings: VerifierSettings) {
    this.now = settings.now ?? Date.now;
    this.leeway = settings.leewaySeconds ?? 10;
    this.statusTtlMs = settings.statusTtlMs ?? 1000;
    this.cache = new Lru(settings.cacheSize ?? 10_000);
  }

  /**
   * A token verified before, decided without waiting: its answer, or
   * undefined when the token is not in the cache, is expired, or the
   * credential behind it has no fresh CredentialStatus answer yet (then
   * `verify` decides). The hot path of every request with a Bearer token.
   */
  known(raw: string): TokenCheck | undefined {
    const v = this.cache.get(cacheKey(raw));
    if (!v || v.raw !== raw) return undefined;
    const now = this.now();
    const { keys } = this.settings;
    if (now >= v.expiresAt || keys.isStale() || !keys.byKid(v.kid)) return undefined;
    let valid = true;
    if (v.statusKey !== null && this.settings.status) {
      const s = this.statuses.get(v.statusKey);
      if (!s || s.until <= now || s.settled === undefined) return undefined;
      valid = s.settled;
    }
    this.stats.cached++;
    return valid ? v.check : { ok: false, reason: 'revoked' };
  }

  /** The credentials behind tokens changed somewhere (a revocation, a disabled account): ask again for every holder. */
  forgetStatuses(): void {
    this.statuses.clear();
  }

  async verify(raw: string): Promise<TokenCheck> {
    const { keys } = this.settings;
    // Keys changed elsewhere: decide on the keys as they are now, not as they were.
    const current = keys.current();
    if (current) await current;
    // Retirements and rotations made elsewhere are picked up in the background.
    if (keys.isStale()) void keys.reload().catch(() => {});
    const now = this.now();
    const key = cacheKey(raw);
    let v = this.cache.get(key);
    if (v && v.raw !== raw) v = undefined;
    if (v && (now >= v.expiresAt || !keys.byKid(v.kid))) {
      // Expired, or its key was retired since it was verified.
      this.cache.delete(key);
      return { ok: false, reason: now >= v.expiresAt ? 'expired' : 'unknown key' };
    }
    if (v) this.stats.cached++;
    else {
      this.stats.checked++;
      const fresh = await this.check(raw, now);
      if (!fresh.ok) return fresh;
      v = fresh.verified;
      this.cache.set(key, v);
    }
    if (!(await this.stillValid(v, now))) return { ok: false, reason: 'revoked' };
    return v.check;
  }

  private async check(raw: string, now: number): Promise<{ ok: true; verified: Verified } | { ok: false; reason: VerifyFailure }> {
    const { keys, issuer, service } = this.settings;
    const jwt = tryParseJwt(raw);
    if (!jwt) return { ok: false, reason: 'malformed' };
    const kid = jwt.header.kid;
    if (!kid) return { ok: false, reason: 'unknown key' };
    let key = keys.byKid(kid);
    if (!key && now - this.unknownKidReloadAt >= UNKNOWN_KID_RELOAD_MS) {
      this.unknownKidReloadAt = now;
      await keys.reload();
      key = keys.byKid(kid);
    }
    if (!key) return { ok: false, reason: 'unknown key' };
    if (jwt.header.alg !== key.algorithm || !verifySignature(jwt.header.alg, key.publicKey, jwt.signingInput, jwt.signature)) return { ok: false, reason: 'signature' };
    const failure = checkClaims(jwt.claims, { issuer, audience: service, leewaySeconds: this.leeway, now });
    if (failure) return { ok: false, reason: failure };
    const sub = jwt.claims.sub ?? '';
    const holder = holderOf(sub, jwt.claims.berth);
    if (!holder) return { ok: false, reason: 'not berth' };
    const principal: Verified['principal'] = { kind: 'granted', subject: sub, access: accessOf(jwt.claims) };
    const expiresAt = validUntil(jwt.claims, this.leeway);
    return {
      ok: true,
      verified: { raw, principal, holder, expiresAt, kid, statusKey: statusKey(holder), check: { ok: true, principal, holder, expiresAt } },
    };
  }

  /** CredentialStatus for users and robots, its answer shared and kept statusTtlMs; anonymous and htpasswd holders have nothing to revoke here. */
  private stillValid({ holder, statusKey: key }: Verified, now: number): Promise<boolean> | boolean {
    const status = this.settings.status;
    if (!status || key === null) return true;
    const known = this.statuses.get(key);
    if (known && known.until > now) return known.valid;
    if (this.statuses.size >= 10_000) {
      for (const [k, s] of this.statuses) if (s.until <= now) this.statuses.delete(k);
      if (this.statuses.size >= 10_000) this.statuses.clear();
    }
    const valid = status.stillValid(holder);
    const entry: Status = { until: now + this.statusTtlMs, valid };
    this.statuses.set(key, entry);
    valid.then(
      (ok) => {
        entry.settled = ok;
      },
      () => {
        // A failed check is not remembered: the next request asks again.
        if (this.statuses.get(key) === entry) this.statuses.delete(key);
      },
    );
    return valid;
  }
}

/** Where CredentialStatus's answer for a token's holder is kept: users (per personal access token) and robots; others have nothing to revoke. */
function statusKey(holder: Principal): string | null {
  if (holder.kind === 'user') return `u:${holder.id}:${holder.token?.id ?? ''}`;
  if (holder.kind === 'robot') return `r:${holder.id}`;
  return null;
}
