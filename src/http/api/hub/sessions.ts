/**
 * Browser sessions: a `berth_session` cookie holding a `bses_` secret (32
 * random bytes), stored as its SHA-256 in the refresh token table under the
 * client id `berth-session`. So a session ends with everything that ends a
 * refresh token: a password change, a disabled or deleted account, a revoked
 * personal access token it was opened with; and the token endpoint never
 * takes one for a refresh token (those start with `bref_`).
 *
 * The CSRF token is an HMAC of the session secret: the server recomputes it
 * from the cookie (nothing more to store), and nobody who cannot read the
 * HttpOnly cookie can compute it.
 */
import { createHmac } from 'node:crypto';
import type { Principal } from '../../../access/types.js';
import type { HubContext } from '../../../hub/context.js';
import type { Principals } from '../../../hub/credentials.js';
import { hashSecret, newSecret, sameSecret } from '../../../hub/secrets.js';

export const SESSION_COOKIE = 'berth_session';
export const SESSION_CLIENT = 'berth-session';
export const SESSION_PREFIX = 'bses_';
export const DEFAULT_SESSION_LIFETIME_MS = 12 * 3_600_000;

export function csrfTokenOf(secret: string): string {
  return createHmac('sha256', secret).update('berth csrf token').digest('base64url');
}

export function csrfMatches(secret: string, presented: string): boolean {
  return sameSecret(csrfTokenOf(secret), presented);
}

export class SessionStore {
  constructor(
    private readonly hub: HubContext,
    private readonly principals: Principals,
    readonly lifetimeMs: number = DEFAULT_SESSION_LIFETIME_MS,
  ) {}

  /** Opens a session for a principal that just logged in; its secret is for the cookie only. */
  async open(principal: Principal): Promise<{ secret: string; expiresAt: number }> {
    const secret = newSecret(SESSION_PREFIX);
    const base = { tokenHash: hashSecret(secret), clientId: SESSION_CLIENT, lifetimeMs: this.lifetimeMs };
    if (principal.kind === 'user') await this.hub.credentials.insertRefreshToken({ ...base, accountId: principal.id, accessTokenId: principal.token?.id ?? null, robotId: null });
    else if (principal.kind === 'robot') await this.hub.credentials.insertRefreshToken({ ...base, accountId: null, accessTokenId: null, robotId: principal.id });
    else throw new Error(`sessions are for accounts and robots, not ${principal.kind}`);
    // The row's own expiry, on the database's clock.
    const row = await this.hub.credentials.refreshTokenByHash(base.tokenHash);
    return { secret, expiresAt: row!.expiresAt };
  }

  /** The principal of a live session, as it stands now; null for anything else. */
  async resolve(secret: string): Promise<{ principal: Principal; hash: string; expiresAt: number } | null> {
    if (!secret.startsWith(SESSION_PREFIX) || secret.length > 100) return null;
    const hash = hashSecret(secret);
    const row = await this.hub.credentials.refreshTokenByHash(hash);
    if (!row || row.clientId !== SESSION_CLIENT || row.revokedAt !== null || row.expiresAt <= (await this.hub.store.clock())) return null;
    const principal = row.robotId !== null ? await this.principals.robot(row.robotId) : row.accountId !== null ? await this.principals.user(row.accountId, row.accessTokenId) : null;
    return principal ? { principal, hash, expiresAt: row.expiresAt } : null;
  }

  async close(hash: string): Promise<boolean> {
    return this.hub.credentials.revokeRefreshToken(hash);
  }
}

/** The value of one cookie in a Cookie header (the first of that name), or null. */
export function cookieValue(header: string | string[] | undefined, name: string): string | null {
  const text = Array.isArray(header) ? header.join('; ') : header;
  if (!text) return null;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}
