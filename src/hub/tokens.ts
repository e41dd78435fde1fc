/**
 * Personal access tokens (a user's password substitute for CI, capped by
 * scopes), robots (an organization's machine accounts with per-repository
 * permissions) and refresh tokens (what `docker login` keeps). Every secret
 * is shown once, when created, and stored as its SHA-256.
 */
import type { Principal, TokenScope } from '../access/types.js';
import type { GrantedPermission } from '../metadata/accounts.js';
import type { AccessTokenRow, RobotRow } from '../metadata/credentials.js';
import type { RefreshTokens } from '../auth/token/types.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import { namespaceOf, robotNameProblem } from './names.js';
import { checkPermission, organizationId } from './organizations.js';
import { hashSecret, newSecret, PAT_PREFIX, REFRESH_PREFIX, ROBOT_PREFIX } from './secrets.js';

export const TOKEN_SCOPES: readonly TokenScope[] = ['read', 'write', 'delete'];

/** A token's last use is written at most this often. */
export const LAST_USED_EVERY_MS = 60_000;

export function checkScopes(scopes: readonly string[]): TokenScope[] {
  if (scopes.length === 0) throw new HubError('INVALID', 'a token needs at least one scope (read, write, delete)');
  for (const s of scopes) if (!(TOKEN_SCOPES as readonly string[]).includes(s)) throw new HubError('INVALID', `unknown scope ${JSON.stringify(s)} (read, write, delete)`);
  return [...new Set(scopes)] as TokenScope[];
}

export interface AccessTokenInfo {
  id: number;
  name: string;
  scopes: TokenScope[];
  expiresAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
  revoked: boolean;
}

const info = (t: AccessTokenRow): AccessTokenInfo => ({
  id: t.id,
  name: t.name,
  scopes: t.scopes as TokenScope[],
  expiresAt: t.expiresAt,
  lastUsedAt: t.lastUsedAt,
  createdAt: t.createdAt,
  revoked: t.revokedAt !== null,
});

export class AccessTokenService {
  constructor(private readonly hub: HubContext) {}

  private async user(name: string) {
    const a = await this.hub.accounts.byName(name);
    if (!a || a.kind !== 'user') throw new HubError('NOT_FOUND', `no user ${name}`);
    return a;
  }

  /** Creates a token; its secret is in the answer and nowhere else. */
  async create(owner: string, token: { name: string; scopes: readonly string[]; expiresInMs?: number | null }, actor: Actor): Promise<AccessTokenInfo & { secret: string }> {
    const a = await this.user(owner);
    const scopes = checkScopes(token.scopes);
    const name = token.name.trim();
    if (name === '' || name.length > 100) throw new HubError('INVALID', 'a token needs a name of 1 to 100 characters');
    if (token.expiresInMs !== undefined && token.expiresInMs !== null && !(token.expiresInMs > 0)) throw new HubError('INVALID', 'a token must expire in the future');
    const secret = newSecret(PAT_PREFIX);
    const expiresAt = token.expiresInMs ? (await this.hub.store.clock()) + token.expiresInMs : null;
    const id = await this.hub.credentials.insertAccessToken({ accountId: a.id, name, secretHash: hashSecret(secret), scopes, expiresAt });
    await this.hub.audit(actor, 'token.create', owner, { token: id, name, scopes, expiresAt });
    return { ...info((await this.hub.credentials.accessTokenById(id))!), secret };
  }

  async list(owner: string): Promise<AccessTokenInfo[]> {
    return (await this.hub.credentials.accessTokens((await this.user(owner)).id)).map(info);
  }

  /** Revokes a token at once (and the refresh tokens issued through it). */
  async revoke(owner: string, id: number, actor: Actor): Promise<void> {
    if (!(await this.hub.credentials.revokeAccessToken((await this.user(owner)).id, id))) throw new HubError('NOT_FOUND', `no live token ${id} of ${owner}`);
    await this.hub.audit(actor, 'token.revoke', owner, { token: id });
  }
}

export interface RobotInfo {
  id: number;
  /** The login name: ORG+NAME. */
  login: string;
  description: string;
  expiresAt: number | null;
  createdAt: number;
  disabled: boolean;
  permissions: { repository: string; permission: GrantedPermission }[];
}

export class RobotService {
  constructor(private readonly hub: HubContext) {}

  private org(name: string): Promise<number> {
    return organizationId(this.hub, name);
  }

  private checkRepository(org: string, repository: string): void {
    if (!repository.includes('/') || namespaceOf(repository) !== org) throw new HubError('INVALID', `a robot of ${org} may only hold permissions on ${org}/… repositories, not ${repository}`);
  }

  private async info(r: RobotRow): Promise<RobotInfo> {
    return {
      id: r.id,
      login: `${r.organization}+${r.name}`,
      description: r.description,
      expiresAt: r.expiresAt,
      createdAt: r.createdAt,
      disabled: r.disabledAt !== null,
      permissions: await this.hub.credentials.robotPermissions(r.id),
    };
  }

  async create(
    org: string,
    robot: { name: string; description?: string; expiresInMs?: number | null; permissions?: { repository: string; permission: string }[] },
    actor: Actor,
  ): Promise<RobotInfo & { secret: string }> {
    const orgId = await this.org(org);
    const problem = robotNameProblem(robot.name);
    if (problem) throw new HubError('NAME_INVALID', `robot name ${JSON.stringify(robot.name)} ${problem}`);
    const permissions = (robot.permissions ?? []).map((p) => {
      this.checkRepository(org, p.repository);
      const permission = checkPermission(p.permission);
      if (permission === 'none') throw new HubError('INVALID', 'a robot permission must be read, write or admin');
      return { repository: p.repository, permission };
    });
    const secret = newSecret(ROBOT_PREFIX);
    const expiresAt = robot.expiresInMs ? (await this.hub.store.clock()) + robot.expiresInMs : null;
    const id = await this.hub.credentials.insertRobot({ organizationId: orgId, name: robot.name, secretHash: hashSecret(secret), description: robot.description ?? '', expiresAt, permissions });
    if (id === null) throw new HubError('NAME_TAKEN', `${org} has a robot ${robot.name} already`);
    await this.hub.audit(actor, 'robot.create', `${org}+${robot.name}`, { permissions, expiresAt });
    return { ...(await this.info((await this.hub.credentials.robotById(id))!)), secret };
  }

  async list(org: string): Promise<RobotInfo[]> {
    return Promise.all((await this.hub.credentials.robots(await this.org(org))).map((r) => this.info(r)));
  }

  private async robot(org: string, name: string): Promise<RobotRow> {
    const r = await this.hub.credentials.robot(org, name);
    if (!r) throw new HubError('NOT_FOUND', `no robot ${org}+${name}`);
    return r;
  }

  async setPermission(org: string, name: string, repository: string, permission: string, actor: Actor): Promise<void> {
    this.checkRepository(org, repository);
    const p = checkPermission(permission);
    await this.hub.credentials.setRobotPermission((await this.robot(org, name)).id, repository, p);
    await this.hub.audit(actor, 'robot.permission', `${org}+${name}`, { repository, permission: p });
  }

  /** Disables a robot: its secret and refresh tokens stop working at once; it stays listed. */
  async disable(org: string, name: string, actor: Actor): Promise<void> {
    await this.hub.credentials.disableRobot((await this.robot(org, name)).id);
    await this.hub.audit(actor, 'robot.disable', `${org}+${name}`);
  }

  async delete(org: string, name: string, actor: Actor): Promise<void> {
    await this.hub.credentials.deleteRobot((await this.robot(org, name)).id);
    await this.hub.audit(actor, 'robot.delete', `${org}+${name}`);
  }
}

/**
 * Refresh tokens: issued to a user (remembering the personal access token
 * used to log in, whose scopes keep capping it) or a robot; redeemed only
 * while neither it nor what it came from is revoked, expired or deleted.
 */
export class HubRefreshTokens implements RefreshTokens {
  constructor(
    private readonly hub: HubContext,
    private readonly principals: { user(id: number, tokenId: number | null): Promise<Principal | null>; robot(id: number): Promise<Principal | null> },
  ) {}

  async issue(principal: Principal, clientId: string): Promise<string> {
    const token = newSecret(REFRESH_PREFIX);
    const base = { tokenHash: hashSecret(token), clientId: clientId.slice(0, 200), lifetimeMs: this.hub.settings.refreshLifetimeMs };
    if (principal.kind === 'user') await this.hub.credentials.insertRefreshToken({ ...base, accountId: principal.id, accessTokenId: principal.token?.id ?? null, robotId: null });
    else if (principal.kind === 'robot') await this.hub.credentials.insertRefreshToken({ ...base, accountId: null, accessTokenId: null, robotId: principal.id });
    else throw new Error(`refresh tokens are for accounts and robots, not ${principal.kind}`);
    return token;
  }

  async redeem(token: string): Promise<Principal | null> {
    if (!token.startsWith(REFRESH_PREFIX)) return null;
    const row = await this.hub.credentials.refreshTokenByHash(hashSecret(token));
    if (!row || row.revokedAt !== null || row.expiresAt <= (await this.hub.store.clock())) return null;
    if (row.robotId !== null) return this.principals.robot(row.robotId);
    if (row.accountId !== null) return this.principals.user(row.accountId, row.accessTokenId);
    return null;
  }

  /** Logging out: the token stops working. */
  async revoke(token: string): Promise<boolean> {
    return this.hub.credentials.revokeRefreshToken(hashSecret(token));
  }
}
