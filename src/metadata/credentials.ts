/**
 * The Hub's credential queries: personal access tokens, robots and their
 * permissions, refresh tokens, invitations, failed-login counters and the
 * audit log. Secrets are never stored: only their SHA-256 (hex), by which
 * they are found.
 */
import type { Kysely } from 'kysely';
import { sql } from './kysely.js';
import type { Database } from './schema.js';
import type { MetadataDatabase } from './database.js';
import type { GrantedPermission } from './accounts.js';

export interface AccessTokenRow {
  id: number;
  accountId: number;
  name: string;
  scopes: string[];
  expiresAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
  revokedAt: number | null;
}

export interface RobotRow {
  id: number;
  organizationId: number;
  organization: string;
  name: string;
  description: string;
  expiresAt: number | null;
  createdAt: number;
  disabledAt: number | null;
}

export interface RefreshTokenRow {
  id: number;
  accountId: number | null;
  accessTokenId: number | null;
  robotId: number | null;
  clientId: string;
  expiresAt: number;
  revokedAt: number | null;
}

export interface AuditEntry {
  id: number;
  at: number;
  actor: string | null;
  actorId: number | null;
  action: string;
  target: string | null;
  requestId: string | null;
  client: string | null;
  detail: Record<string, unknown> | null;
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'>;

const n = (v: number | null): number | null => (v === null ? null : Number(v));

export class CredentialQueries {
  constructor(private readonly store: MetadataDatabase) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  // ---- personal access tokens --------------------------------------------------

  async insertAccessToken(t: { accountId: number; name: string; secretHash: string; scopes: string[]; expiresAt: number | null }): Promise<number> {
    return this.store.writing(async () => {
      const row = await this.db
        .insertInto('access_tokens')
        .values({
          account_id: t.accountId,
          name: t.name,
          secret_hash: t.secretHash,
          scopes: t.scopes.join(','),
          expires_at: t.expiresAt,
          last_used_at: null,
          created_at: await this.store.clock(),
          revoked_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    });
  }

  private toToken(r: { id: number; account_id: number; name: string; scopes: string; expires_at: number | null; last_used_at: number | null; created_at: number; revoked_at: number | null }): AccessTokenRow {
    return {
      id: Number(r.id),
      accountId: Number(r.account_id),
      name: r.name,
      scopes: r.scopes.split(',').filter(Boolean),
      expiresAt: n(r.expires_at),
      lastUsedAt: n(r.last_used_at),
      createdAt: Number(r.created_at),
      revokedAt: n(r.revoked_at),
    };
  }

  async accessTokenByHash(hash: string): Promise<(AccessTokenRow & { secretHash: string }) | null> {
    const r = await this.db.selectFrom('access_tokens').selectAll().where('secret_hash', '=', hash).executeTakeFirst();
    return r ? { ...this.toToken(r), secretHash: r.secret_hash } : null;
  }

  async accessTokenById(id: number): Promise<AccessTokenRow | null> {
    const r = await this.db.selectFrom('access_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.toToken(r) : null;
  }

  async accessTokens(accountId: number): Promise<AccessTokenRow[]> {
    const rows = await this.db.selectFrom('access_tokens').selectAll().where('account_id', '=', accountId).orderBy('id').execute();
    return rows.map((r) => this.toToken(r));
  }

  /** Revokes a token of `accountId`, and the refresh tokens that came from it. */
  async revokeAccessToken(accountId: number, id: number): Promise<boolean> {
    const revoked = await this.store.writeTransaction(async (trx) => {
      const at = await this.store.clock(trx);
      const r = await trx.updateTable('access_tokens').set({ revoked_at: at }).where('id', '=', id).where('account_id', '=', accountId).where('revoked_at', 'is', null).executeTakeFirst();
      await trx.updateTable('refresh_tokens').set({ revoked_at: at }).where('access_token_id', '=', id).where('revoked_at', 'is', null).execute();
      return Number(r.numUpdatedRows) > 0;
    });
    // Verified tokens and Basic credentials are cached in every process: drop their answers everywhere.
    if (revoked) await this.store.signals.changed('credentials');
    return revoked;
  }

  /**
   * Records a use of the token, at most once per `everyMs`: the condition
   * makes the write a no-op (no row changed) in between, so a busy CI token
   * costs one small write a minute, not one per request.
   */
  async touchAccessToken(id: number, at: number, everyMs: number): Promise<void> {
    await this.store.writing(() =>
      this.db
        .updateTable('access_tokens')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at - everyMs)]))
        .execute(),
    );
  }

  // ---- robots ------------------------------------------------------------------

  /** The new robot's id, or null when the organization has a robot of that name. */
  async insertRobot(r: { organizationId: number; name: string; secretHash: string; description: string; expiresAt: number | null; permissions: { repository: string; permission: GrantedPermission }[] }): Promise<number | null> {
    return this.store.writeTransaction(async (trx) => {
      const row = await trx
        .insertInto('robots')
        .values({ organization_id: r.organizationId, name: r.name, secret_hash: r.secretHash, description: r.description, expires_at: r.expiresAt, created_at: await this.store.clock(trx), disabled_at: null })
        .onConflict((oc) => oc.columns(['organization_id', 'name']).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!row) return null;
      const id = Number(row.id);
      if (r.permissions.length) await trx.insertInto('robot_permissions').values(r.permissions.map((p) => ({ robot_id: id, repository: p.repository, permission: p.permission }))).execute();
      return id;
    });
  }

  private robotQuery() {
    return this.db
      .selectFrom('robots as r')
      .innerJoin('accounts as o', 'o.id', 'r.organization_id')
      .select(['r.id', 'r.organization_id', 'o.name as organization', 'r.name', 'r.description', 'r.expires_at', 'r.created_at', 'r.disabled_at', 'r.secret_hash']);
  }

  private toRobot(r: { id: number; organization_id: number; organization: string; name: string; description: string; expires_at: number | null; created_at: number; disabled_at: number | null }): RobotRow {
    return {
      id: Number(r.id),
      organizationId: Number(r.organization_id),
      organization: r.organization,
      name: r.name,
      description: r.description,
      expiresAt: n(r.expires_at),
      createdAt: Number(r.created_at),
      disabledAt: n(r.disabled_at),
    };
  }

  async robot(organization: string, name: string): Promise<(RobotRow & { secretHash: string }) | null> {
    const r = await this.robotQuery().where('o.name', '=', organization).where('r.name', '=', name).executeTakeFirst();
    return r ? { ...this.toRobot(r), secretHash: r.secret_hash } : null;
  }

  async robotById(id: number): Promise<RobotRow | null> {
    const r = await this.robotQuery().where('r.id', '=', id).executeTakeFirst();
    return r ? this.toRobot(r) : null;
  }

  async robots(organizationId: number): Promise<RobotRow[]> {
    return (await this.robotQuery().where('r.organization_id', '=', organizationId).orderBy('r.name').execute()).map((r) => this.toRobot(r));
  }

  async robotPermissions(robotId: number): Promise<{ repository: string; permission: GrantedPermission }[]> {
    return this.db.selectFrom('robot_permissions').select(['repository', 'permission']).where('robot_id', '=', robotId).orderBy('repository').execute();
  }

  async robotPermission(robotId: number, repository: string): Promise<GrantedPermission | 'none'> {
    const r = await this.db.selectFrom('robot_permissions').select('permission').where('robot_id', '=', robotId).where('repository', '=', repository).executeTakeFirst();
    return r?.permission ?? 'none';
  }

  async setRobotPermission(robotId: number, repository: string, permission: GrantedPermission | 'none'): Promise<void> {
    await this.store.writing(async () => {
      if (permission === 'none') await this.db.deleteFrom('robot_permissions').where('robot_id', '=', robotId).where('repository', '=', repository).execute();
      else
        await this.db
          .insertInto('robot_permissions')
          .values({ robot_id: robotId, repository, permission })
          .onConflict((oc) => oc.columns(['robot_id', 'repository']).doUpdateSet({ permission }))
          .execute();
    });
  }

  /** Disables a robot (kept for the record) and revokes its refresh tokens. */
  async disableRobot(robotId: number): Promise<boolean> {
    const disabled = await this.store.writeTransaction(async (trx) => {
      const at = await this.store.clock(trx);
      const r = await trx.updateTable('robots').set({ disabled_at: at }).where('id', '=', robotId).where('disabled_at', 'is', null).executeTakeFirst();
      await trx.updateTable('refresh_tokens').set({ revoked_at: at }).where('robot_id', '=', robotId).where('revoked_at', 'is', null).execute();
      return Number(r.numUpdatedRows) > 0;
    });
    if (disabled) await this.store.signals.changed('credentials');
    return disabled;
  }

  async deleteRobot(robotId: number): Promise<boolean> {
    const r = await this.store.writing(() => this.db.deleteFrom('robots').where('id', '=', robotId).executeTakeFirst());
    if (Number(r.numDeletedRows) > 0) await this.store.signals.changed('credentials');
    return Number(r.numDeletedRows) > 0;
  }

  // ---- refresh tokens ----------------------------------------------------------

  async insertRefreshToken(t: { tokenHash: string; accountId: number | null; accessTokenId: number | null; robotId: number | null; clientId: string; lifetimeMs: number }): Promise<void> {
    await this.store.writing(async () => {
      const at = await this.store.clock();
      await this.db
        .insertInto('refresh_tokens')
        .values({ token_hash: t.tokenHash, account_id: t.accountId, access_token_id: t.accessTokenId, robot_id: t.robotId, client_id: t.clientId, expires_at: at + t.lifetimeMs, created_at: at, revoked_at: null })
        .execute();
    });
  }

  async refreshTokenByHash(hash: string): Promise<RefreshTokenRow | null> {
    const r = await this.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    return r
      ? { id: Number(r.id), accountId: n(r.account_id), accessTokenId: n(r.access_token_id), robotId: n(r.robot_id), clientId: r.client_id, expiresAt: Number(r.expires_at), revokedAt: n(r.revoked_at) }
      : null;
  }

  async revokeRefreshToken(hash: string): Promise<boolean> {
    const at = await this.store.clock();
    const r = await this.store.writing(() => this.db.updateTable('refresh_tokens').set({ revoked_at: at }).where('token_hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  /** Revokes every refresh token of an account (a password change, a log out everywhere). */
  async revokeRefreshTokensOf(accountId: number): Promise<number> {
    const at = await this.store.clock();
    const r = await this.store.writing(() => this.db.updateTable('refresh_tokens').set({ revoked_at: at }).where('account_id', '=', accountId).where('revoked_at', 'is', null).executeTakeFirst());
    return Number(r.numUpdatedRows);
  }

  /** Removes refresh tokens expired before `before`. */
  async pruneRefreshTokens(before: number): Promise<number> {
    const r = await this.store.writing(() => this.db.deleteFrom('refresh_tokens').where('expires_at', '<', before).executeTakeFirst());
    return Number(r.numDeletedRows);
  }

  // ---- invitations -------------------------------------------------------------

  async insertInvitation(i: { codeHash: string; email: string | null; createdBy: number | null; lifetimeMs: number }): Promise<number> {
    return this.store.writing(async () => {
      const at = await this.store.clock();
      const row = await this.db
        .insertInto('invitations')
        .values({ code_hash: i.codeHash, email: i.email, created_by: i.createdBy, expires_at: at + i.lifetimeMs, created_at: at, used_at: null, used_by: null })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    });
  }

  async invitation(codeHash: string): Promise<{ id: number; email: string | null; expiresAt: number; usedAt: number | null } | null> {
    const r = await this.db.selectFrom('invitations').select(['id', 'email', 'expires_at', 'used_at']).where('code_hash', '=', codeHash).executeTakeFirst();
    return r ? { id: Number(r.id), email: r.email, expiresAt: Number(r.expires_at), usedAt: n(r.used_at) } : null;
  }

  /**
   * Registers an account with an invitation, atomically: the invitation is
   * used by exactly one registration (the conditional update is the claim).
   * Runs `create` in the same transaction; null when the invitation is
   * unknown, used or expired, or `create` returned null.
   */
  async redeemInvitation(codeHash: string, create: (db: Kysely<Database>) => Promise<number | null>): Promise<number | null> {
    const NOPE = Symbol('nope');
    try {
      return await this.store.writeTransaction(async (trx) => {
        const at = await this.store.clock(trx);
        const claimed = await trx.updateTable('invitations').set({ used_at: at }).where('code_hash', '=', codeHash).where('used_at', 'is', null).where('expires_at', '>', at).executeTakeFirst();
        if (Number(claimed.numUpdatedRows) === 0) return null;
        const id = await create(trx);
        // Rolls back the claim: the invitation stays usable when the name was taken.
        if (id === null) throw NOPE;
        await trx.updateTable('invitations').set({ used_by: id }).where('code_hash', '=', codeHash).execute();
        return id;
      });
    } catch (err) {
      if (err === NOPE) return null;
      throw err;
    }
  }

  // ---- failed logins -------------------------------------------------------------

  /**
   * Counts a failed login under `key` in a fixed window of `windowMs` that
   * starts at its first failure; one upsert, atomic in both engines, so
   * every process (and replica) shares the count. Returns the count.
   */
  async recordFailure(key: string, windowMs: number): Promise<number> {
    return this.store.writing(async () => {
      const at = await this.store.clock();
      const row = await this.db
        .insertInto('login_failures')
        .values({ key, window_start: at, failures: 1 })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            failures: sql`CASE WHEN login_failures.window_start <= ${at - windowMs} THEN 1 ELSE login_failures.failures + 1 END`,
            window_start: sql`CASE WHEN login_failures.window_start <= ${at - windowMs} THEN ${at} ELSE login_failures.window_start END`,
          }),
        )
        .returning('failures')
        .executeTakeFirstOrThrow();
      return Number(row.failures);
    });
  }

  /** Failures counted under each key in its current window (0 when the window is over). */
  async failures(keys: string[], windowMs: number): Promise<Map<string, number>> {
    const at = await this.store.clock();
    const rows = keys.length ? await this.db.selectFrom('login_failures').select(['key', 'failures']).where('key', 'in', keys).where('window_start', '>', at - windowMs).execute() : [];
    return new Map(rows.map((r) => [r.key, Number(r.failures)]));
  }

  async clearFailures(key: string): Promise<void> {
    await this.store.writing(() => this.db.deleteFrom('login_failures').where('key', '=', key).execute());
  }

  async pruneFailures(windowMs: number): Promise<number> {
    const at = await this.store.clock();
    const r = await this.store.writing(() => this.db.deleteFrom('login_failures').where('window_start', '<=', at - windowMs).executeTakeFirst());
    return Number(r.numDeletedRows);
  }

  // ---- audit log -----------------------------------------------------------------

  /** Appends an entry stamped with the database's clock. */
  async appendAudit(e: NewAuditEntry): Promise<void> {
    await this.store.writing(async () => {
      await this.db
        .insertInto('audit_log')
        .values({
          at: await this.store.clock(),
          actor: e.actor,
          actor_id: e.actorId,
          action: e.action,
          target: e.target,
          request_id: e.requestId,
          client: e.client,
          detail: e.detail === null ? null : JSON.stringify(e.detail),
        })
        .execute();
    });
  }

  /** Entries newest first, with ids below `before`; optionally of one actor or target. */
  async audit(page: { before?: number; limit: number; actor?: string; target?: string }): Promise<AuditEntry[]> {
    let q = this.db.selectFrom('audit_log').selectAll();
    if (page.before !== undefined) q = q.where('id', '<', page.before);
    if (page.actor !== undefined) q = q.where('actor', '=', page.actor);
    if (page.target !== undefined) q = q.where('target', '=', page.target);
    const rows = await q.orderBy('id', 'desc').limit(page.limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      at: Number(r.at),
      actor: r.actor,
      actorId: n(r.actor_id),
      action: r.action,
      target: r.target,
      requestId: r.request_id,
      client: r.client,
      detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
    }));
  }
}
