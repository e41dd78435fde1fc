/**
 * Who is this? Checks a username and secret the way the token endpoint and
 * Basic auth need (CredentialVerifier), and whether the credential behind a
 * token issued earlier still holds (CredentialStatus). The secret may be:
 * - a robot's secret, with the login `ORG+NAME`;
 * - a personal access token (`bpat_…`) with its owner's name;
 * - the account's password (scrypt, or bcrypt imported from htpasswd and
 *   replaced by scrypt on success).
 * Wrong credentials of every kind, a disabled account, an expired or
 * revoked token and a rate-limited login all give the same null; an unknown
 * name costs the time of a real password check.
 */
import type { Principal, TokenScope } from '../access/types.js';
import type { CredentialStatus, CredentialVerifier } from '../auth/token/types.js';
import type { Actor, HubContext } from './context.js';
import { parseRobotName } from './names.js';
import { dummyVerify, hashPassword, needsRehash, verifyPassword } from './passwords.js';
import type { LoginLimiter } from './ratelimit.js';
import { hashSecret, PAT_PREFIX, ROBOT_PREFIX, sameSecret } from './secrets.js';
import { LAST_USED_EVERY_MS } from './tokens.js';

export class Principals {
  constructor(private readonly hub: HubContext) {}

  /** A user principal as it stands now (null if deleted or disabled, or its token is revoked or expired). */
  async user(id: number, tokenId: number | null): Promise<Principal | null> {
    const a = await this.hub.accounts.byId(id);
    if (!a || a.kind !== 'user' || a.disabledAt !== null) return null;
    if (tokenId === null) return { kind: 'user', id: a.id, name: a.name, admin: a.admin };
    const t = await this.hub.credentials.accessTokenById(tokenId);
    if (!t || t.accountId !== a.id || t.revokedAt !== null || (t.expiresAt !== null && t.expiresAt <= (await this.hub.store.clock()))) return null;
    return { kind: 'user', id: a.id, name: a.name, admin: a.admin, token: { id: t.id, scopes: t.scopes as TokenScope[] } };
  }

  async robot(id: number): Promise<Principal | null> {
    const r = await this.hub.credentials.robotById(id);
    if (!r || r.disabledAt !== null || (r.expiresAt !== null && r.expiresAt <= (await this.hub.store.clock()))) return null;
    return { kind: 'robot', id: r.id, name: `${r.organization}+${r.name}`, organization: r.organization };
  }
}

export class HubCredentialVerifier implements CredentialVerifier {
  constructor(
    private readonly hub: HubContext,
    private readonly limiter: LoginLimiter,
    private readonly principals: Principals,
    /** Request id for the audit log, when the caller has one. */
    private readonly requestId: () => string | null = () => null,
  ) {}

  async verify(username: string, secret: string, client: string, requestId?: string): Promise<Principal | null> {
    const robot = parseRobotName(username);
    const kind = robot ? 'robot' : secret.startsWith(PAT_PREFIX) ? 'token' : 'password';
    const actor: Actor = { name: username, client, requestId: requestId ?? this.requestId() };
    const limit = await this.limiter.locked(username, client, kind === 'password');
    if (limit.locked) {
      // The same answer, and about the same time, as a wrong password.
      if (kind === 'password') await dummyVerify(secret);
      await this.fail(username, client, actor, 'rate limited');
      return null;
    }
    let principal: Principal | null;
    if (robot) principal = await this.robot(robot.organization, robot.name, secret);
    else if (kind === 'token') principal = await this.token(username, secret);
    else principal = await this.password(username, secret);
    if (!principal) {
      await this.fail(username, client, actor, kind);
      return null;
    }
    // Only when there is a count to clear: most logins write nothing here.
    if (kind === 'password' && limit.accountFailures > 0) await this.limiter.succeeded(username);
    await this.hub.audit({ ...actor, id: principal.kind === 'user' || principal.kind === 'robot' ? principal.id : null }, 'login', username, { with: kind });
    return principal;
  }

  private async fail(username: string, client: string, actor: Actor, why: string): Promise<void> {
    await this.limiter.failed(username, client);
    await this.hub.audit(actor, 'login.failed', username, { with: why });
  }

  private async robot(organization: string, name: string, secret: string): Promise<Principal | null> {
    if (!secret.startsWith(ROBOT_PREFIX)) return null;
    const r = await this.hub.credentials.robot(organization, name);
    if (!r || !sameSecret(hashSecret(secret), r.secretHash)) return null;
    return this.principals.robot(r.id);
  }

  private async token(username: string, secret: string): Promise<Principal | null> {
    const t = await this.hub.credentials.accessTokenByHash(hashSecret(secret));
    if (!t) return null;
    const principal = await this.principals.user(t.accountId, t.id);
    if (!principal || principal.kind !== 'user' || principal.name !== username) return null;
    await this.hub.credentials.touchAccessToken(t.id, await this.hub.store.clock(), LAST_USED_EVERY_MS);
    return principal;
  }

  private async password(username: string, password: string): Promise<Principal | null> {
    const a = await this.hub.accounts.byName(username);
    if (!a || a.kind !== 'user' || !a.passwordHash) return dummyVerify(password).then(() => null);
    if (!(await verifyPassword(password, a.passwordHash))) return null;
    if (a.disabledAt !== null) return null;
    // An imported bcrypt hash (or older scrypt parameters) becomes today's scrypt.
    if (needsRehash(a.passwordHash)) await this.hub.accounts.replacePasswordHash(a.id, a.passwordHash, await hashPassword(password));
    return { kind: 'user', id: a.id, name: a.name, admin: a.admin };
  }
}

export class HubCredentialStatus implements CredentialStatus {
  constructor(private readonly principals: Principals) {}

  async stillValid(principal: Principal): Promise<boolean> {
    switch (principal.kind) {
      case 'user': {
        const now = await this.principals.user(principal.id, principal.token?.id ?? null);
        // Renamed, demoted or re-created accounts do not keep what the token said.
        return now !== null && now.kind === 'user' && now.name === principal.name && now.admin === principal.admin;
      }
      case 'robot':
        return (await this.principals.robot(principal.id)) !== null;
      default:
        return true;
    }
  }
}
