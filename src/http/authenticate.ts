/**
 * Who is asking, with accounts or token auth on: a request's credentials
 * become a Principal (src/access/types.ts).
 *
 * - Accounts (`auth.accounts`): `Authorization: Bearer <Berth JWT>` (the
 *   TokenVerifier: signature checked once, then a cache lookup, plus the
 *   Hub's CredentialStatus every second), or `Basic user:secret` (a
 *   password, a personal access token or a robot secret, checked by the
 *   Hub's CredentialVerifier). A verified Basic credential is remembered for
 *   a few seconds as an HMAC (never the secret), as htpasswd does, so scrypt
 *   or bcrypt does not run on every request of a client that sends Basic
 *   each time; while remembered, CredentialStatus still says within a second
 *   when its token, robot or account is revoked.
 * - External token server (`auth.token`): Bearer tokens only, validated by
 *   the ExternalTokenValidator.
 *
 * No credentials at all is the anonymous principal: what it may do is the
 * access decision's business (src/http/authorize.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../access/types.js';
import { parseBasic } from '../auth/index.js';
import type { CredentialStatus, CredentialVerifier, ExternalTokenValidator, TokenCheck, TokenVerifier } from '../auth/token/index.js';

export type Credentials = 'none' | 'basic' | 'bearer' | 'other';

export type AuthOutcome =
  | { ok: true; principal: Principal; holder: Principal; name?: string; credentials: Credentials }
  /** `reason` and `user` are for the access log only, never for the client. */
  | { ok: false; reason: string; user?: string; credentials: Credentials };

export interface EdgeAuthenticator {
  authenticate(req: IncomingMessage, requestId: string): Promise<AuthOutcome>;
}

const ANONYMOUS: Principal = { kind: 'anonymous' };
const NO_CREDENTIALS: AuthOutcome = { ok: true, principal: ANONYMOUS, holder: ANONYMOUS, credentials: 'none' };
const BEARER = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i;

/** The name logs and events show for a principal. */
export function principalName(p: Principal): string | undefined {
  switch (p.kind) {
    case 'user':
    case 'robot':
    case 'htpasswd':
      return p.name;
    case 'granted':
      return p.subject || undefined;
    default:
      return undefined;
  }
}

function bearerOutcome(check: TokenCheck): AuthOutcome {
  if (!check.ok) return { ok: false, reason: `token ${check.reason}`, credentials: 'bearer' };
  return { ok: true, principal: check.principal, holder: check.holder, name: principalName(check.holder), credentials: 'bearer' };
}

/** The address failed logins are counted against: the peer, not a forwarded header a client could set to anything. */
export function clientAddress(req: IncomingMessage): string {
  return req.socket?.remoteAddress ?? '';
}

/** How long a verified Basic credential is remembered. */
const BASIC_TTL_MS = 5_000;
/** How long CredentialStatus's answer is kept for a remembered Basic credential (as the token verifier does). */
const STATUS_TTL_MS = 1_000;
const MAX_ENTRIES = 10_000;

/** Verified Basic credentials, by an HMAC of user and secret under a key that never leaves the process. */
class BasicCache {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, { principal: Principal; until: number }>();

  mac(user: string, secret: string): string {
    return createHmac('sha256', this.key).update(user).update('\0').update(secret).digest('base64');
  }

  get(mac: string, now: number): Principal | null {
    const hit = this.entries.get(mac);
    if (!hit) return null;
    if (hit.until <= now) {
      this.entries.delete(mac);
      return null;
    }
    return hit.principal;
  }

  set(mac: string, principal: Principal, now: number): void {
    if (this.entries.size >= MAX_ENTRIES) {
      for (const [k, e] of this.entries) if (e.until <= now) this.entries.delete(k);
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    }
    this.entries.set(mac, { principal, until: now + BASIC_TTL_MS });
  }

  forget(mac: string): void {
    this.entries.delete(mac);
  }

  clear(): void {
    this.entries.clear();
  }
}

export interface AccountsAuthOptions {
  tokens: TokenVerifier;
  credentials: CredentialVerifier;
  status: CredentialStatus;
  now?: () => number;
}

export class AccountsAuthenticator implements EdgeAuthenticator {
  private readonly basic = new BasicCache();
  private readonly statuses = new Map<string, { until: number; valid: Promise<boolean> }>();
  private readonly now: () => number;

  constructor(private readonly opts: AccountsAuthOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Credentials changed somewhere (a password, a revocation, a disabled account): nothing remembered holds. */
  forget(): void {
    this.basic.clear();
    this.statuses.clear();
  }

  async authenticate(req: IncomingMessage, requestId: string): Promise<AuthOutcome> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') return NO_CREDENTIALS;
    // The hot path: a token verified before, in the usual spelling, decided
    // without a regex over its kilobyte and without waiting (an unknown
    // string is simply not in the cache, and goes the long way).
    const cached = header.startsWith('Bearer ') ? this.opts.tokens.known(header.slice(7)) : undefined;
    if (cached) return bearerOutcome(cached);
    const bearer = BEARER.exec(header);
    if (bearer) return bearerOutcome(await this.opts.tokens.verify(bearer[1]!));
    const creds = parseBasic(header);
    if (!creds) return { ok: false, reason: 'malformed credentials', credentials: 'other' };
    // No user and no secret is nobody: dockerd's v1 client sends exactly that to /v1/search over HTTPS when logged out.
    if (creds.user === '' && creds.password === '') return NO_CREDENTIALS;
    const mac = this.basic.mac(creds.user, creds.password);
    const now = this.now();
    const known = this.basic.get(mac, now);
    if (known) {
      if (await this.stillValid(known, now)) return { ok: true, principal: known, holder: known, name: principalName(known), credentials: 'basic' };
      this.basic.forget(mac);
      return { ok: false, reason: 'revoked', user: creds.user, credentials: 'basic' };
    }
    const client = clientAddress(req);
    const principal = await this.opts.credentials.verify(creds.user, creds.password, client, requestId);
    if (!principal) return { ok: false, reason: 'wrong credentials', user: creds.user, credentials: 'basic' };
    this.basic.set(mac, principal, now);
    return { ok: true, principal, holder: principal, name: principalName(principal), credentials: 'basic' };
  }

  /** CredentialStatus for a remembered Basic credential, its answer shared and kept a second. */
  private stillValid(p: Principal, now: number): Promise<boolean> | boolean {
    if (p.kind !== 'user' && p.kind !== 'robot') return true;
    const key = p.kind === 'user' ? `u:${p.id}:${p.token?.id ?? ''}` : `r:${p.id}`;
    const known = this.statuses.get(key);
    if (known && known.until > now) return known.valid;
    if (this.statuses.size >= MAX_ENTRIES) this.statuses.clear();
    const valid = this.opts.status.stillValid(p);
    const entry = { until: now + STATUS_TTL_MS, valid };
    this.statuses.set(key, entry);
    valid.catch(() => {
      if (this.statuses.get(key) === entry) this.statuses.delete(key);
    });
    return valid;
  }
}

/** `auth.token`: the bearer of an external token server's JWT may do what its access list says; nothing else is a credential. */
export class ExternalTokenAuthenticator implements EdgeAuthenticator {
  constructor(private readonly validator: ExternalTokenValidator) {}

  async authenticate(req: IncomingMessage): Promise<AuthOutcome> {
    const header = req.headers.authorization;
    if (header === undefined || header === '') return NO_CREDENTIALS;
    const bearer = BEARER.exec(header);
    if (!bearer) return { ok: false, reason: 'not a bearer token', credentials: 'other' };
    const check = await this.validator.verify(bearer[1]!);
    if (!check.ok) return { ok: false, reason: `token ${check.reason}`, credentials: 'bearer' };
    return { ok: true, principal: check.principal, holder: check.principal, name: principalName(check.principal), credentials: 'bearer' };
  }
}
