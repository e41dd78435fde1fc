/**
 * The Hub's account queries over the metadata store's database handle:
 * accounts (users and organizations), organization members, teams and their
 * permissions, collaborators, repository visibility, and the lookups the
 * access facts are built from. No policy here (that is src/hub and
 * src/access): only SQL, written once for SQLite and PostgreSQL.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import { sql } from './kysely.js';
import type { AccountsTable, Database } from './schema.js';
import type { MetadataDatabase } from './database.js';

type Db = Kysely<Database> | Transaction<Database>;

export type GrantedPermission = 'read' | 'write' | 'admin';
export const OWNERS_TEAM = 'owners';

export interface AccountRow {
  id: number;
  name: string;
  kind: 'user' | 'org';
  email: string | null;
  passwordHash: string | null;
  admin: boolean;
  createdAt: number;
  disabledAt: number | null;
}

export interface NewAccount {
  name: string;
  kind: 'user' | 'org';
  email?: string | null;
  passwordHash?: string | null;
  admin?: boolean;
}

export interface TeamRow {
  id: number;
  organizationId: number;
  name: string;
}

/** Why an account cannot be deleted yet. */
export interface DeleteBlockers {
  /** Repositories in its namespace (up to a limit). */
  repositories: string[];
  /** Organizations of which it is the last owner. */
  organizations: string[];
}

function toAccount(r: Selectable<AccountsTable>): AccountRow {
  return {
    id: Number(r.id),
    name: r.name,
    kind: r.kind,
    email: r.email,
    passwordHash: r.password_hash,
    admin: Number(r.admin) === 1,
    createdAt: Number(r.created_at),
    disabledAt: r.disabled_at === null ? null : Number(r.disabled_at),
  };
}

/**
 * The byte range of names inside namespace `ns` ('ns/' ≤ name < 'ns0'): '0'
 * follows '/' in byte order, and both engines compare names bytewise, so an
 * index range scan finds them (LIKE would treat '_' as a wildcard).
 */
export function namespaceRange(ns: string): [string, string] {
  return [`${ns}/`, `${ns}0`];
}

const rank: Record<string, number> = { none: 0, read: 1, write: 2, admin: 3 };
export function strongest(perms: Iterable<string>): GrantedPermission | 'none' {
  let best: GrantedPermission | 'none' = 'none';
  for (const p of perms) if ((rank[p] ?? 0) > rank[best]!) best = p as GrantedPermission;
  return best;
}

export class AccountQueries {
  constructor(private readonly store: MetadataDatabase) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  // ---- accounts --------------------------------------------------------------

  /** Whether any repository's name begins with `namespace/` (an account of that name would own it). */
  async namespaceHoldsRepositories(namespace: string): Promise<boolean> {
    // A range, not LIKE: '_' in a name would be a wildcard. '0' is the character after '/'.
    const row = await this.db.selectFrom('repositories').select('id').where('name', '>', `${namespace}/`).where('name', '<', `${namespace}0`).limit(1).executeTakeFirst();
    return row !== undefined;
  }

  async byName(name: string, db: Db = this.db): Promise<AccountRow | null> {
    const row = await db.selectFrom('accounts').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toAccount(row) : null;
  }

  async byId(id: number, db: Db = this.db): Promise<AccountRow | null> {
    const row = await db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toAccount(row) : null;
  }

  /** The new account's id, or null when the name is taken (by a user or an organization). */
  async insert(account: NewAccount, db?: Db): Promise<number | null> {
    const run = async (d: Db) => {
      const row = await d
        .insertInto('accounts')
        .values({
          name: account.name,
          kind: account.kind,
          email: account.email ?? null,
          password_hash: account.passwordHash ?? null,
          admin: account.admin ? 1 : 0,
          created_at: await this.store.clock(d),
          disabled_at: null,
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .returning('id')
        .executeTakeFirst();
      return row ? Number(row.id) : null;
    };
    return db ? run(db) : this.store.writing(() => run(this.db));
  }

  async update(id: number, changes: { passwordHash?: string; email?: string | null; admin?: boolean; disabled?: boolean }): Promise<boolean> {
    const set: Partial<{ password_hash: string; email: string | null; admin: number; disabled_at: number | null }> = {};
    if (changes.passwordHash !== undefined) set.password_hash = changes.passwordHash;
    if (changes.email !== undefined) set.email = changes.email;
    if (changes.admin !== undefined) set.admin = changes.admin ? 1 : 0;
    if (changes.disabled !== undefined) set.disabled_at = changes.disabled ? await this.store.clock() : null;
    if (Object.keys(set).length === 0) return true;
    const r = await this.store.writing(() => this.db.updateTable('accounts').set(set).where('id', '=', id).executeTakeFirst());
    // A new password, a demotion or a disabled account must not be answered from a cache anywhere.
    if (changes.passwordHash !== undefined || changes.admin !== undefined || changes.disabled !== undefined) await this.store.signals.changed('credentials');
    return Number(r.numUpdatedRows) > 0;
  }

  /** Replaces a password hash only if it is still `expected` (a re-hash at login must not undo a password change made meanwhile). */
  async replacePasswordHash(id: number, expected: string, hash: string): Promise<void> {
    await this.store.writing(() => this.db.updateTable('accounts').set({ password_hash: hash }).where('id', '=', id).where('password_hash', '=', expected).execute());
  }

  /** Accounts in name order, after `after`. */
  async list(page: { after?: string; limit: number; kind?: 'user' | 'org' }): Promise<AccountRow[]> {
    let q = this.db.selectFrom('accounts').selectAll().where('name', '>', page.after ?? '');
    if (page.kind) q = q.where('kind', '=', page.kind);
    return (await q.orderBy('name').limit(page.limit).execute()).map(toAccount);
  }

  async countAdmins(): Promise<number> {
    const r = await this.db.selectFrom('accounts').select((eb) => eb.fn.countAll<number>().as('n')).where('admin', '=', 1).where('kind', '=', 'user').executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Repositories whose first path component is `ns`, in name order. */
  async repositoriesIn(ns: string, limit: number, db: Db = this.db): Promise<string[]> {
    const [low, high] = namespaceRange(ns);
    const rows = await db.selectFrom('repositories').select('name').where('name', '>=', low).where('name', '<', high).orderBy('name').limit(limit).execute();
    return rows.map((r) => r.name);
  }

  /** Organizations in which `accountId` is the only member of the owners team. */
  async lastOwnerOf(accountId: number, db: Db = this.db): Promise<string[]> {
    const rows = await db
      .selectFrom('team_members as tm')
      .innerJoin('teams as t', 't.id', 'tm.team_id')
      .innerJoin('accounts as o', 'o.id', 't.organization_id')
      .select('o.name')
      .where('tm.account_id', '=', accountId)
      .where('t.name', '=', OWNERS_TEAM)
      .where(({ not, exists, selectFrom }) =>
        not(exists(selectFrom('team_members as other').select('other.account_id').whereRef('other.team_id', '=', 't.id').where('other.account_id', '<>', accountId))),
      )
      .orderBy('o.name')
      .execute();
    return rows.map((r) => r.name);
  }

  /**
   * Deletes an account, unless it still owns repositories or is the last
   * owner of an organization: then nothing is deleted and the blockers are
   * returned. Its memberships, tokens, robots (an organization's) and
   * refresh tokens go with it (foreign keys cascade); collaborator rows too.
   */
  async delete(id: number): Promise<{ deleted: boolean; blockers: DeleteBlockers }> {
    const result = await this.store.writeTransaction(async (trx) => {
      const account = await this.byId(id, trx);
      if (!account) return { deleted: false, blockers: { repositories: [], organizations: [] } };
      const blockers = { repositories: await this.repositoriesIn(account.name, 20, trx), organizations: await this.lastOwnerOf(id, trx) };
      if (blockers.repositories.length || blockers.organizations.length) return { deleted: false, blockers };
      // Permissions kept by name for a namespace that is going away: a later account of the same name must not inherit them.
      const [low, high] = namespaceRange(account.name);
      await trx.deleteFrom('collaborators').where('repository', '>=', low).where('repository', '<', high).execute();
      await trx.deleteFrom('accounts').where('id', '=', id).execute();
      return { deleted: true, blockers };
    });
    if (result.deleted) await this.store.signals.changed('credentials');
    return result;
  }

  // ---- organizations ---------------------------------------------------------

  /** Creates an organization whose owners team holds `creatorId`; null when the name is taken. */
  async createOrganization(name: string, creatorId: number): Promise<number | null> {
    return this.store.writeTransaction(async (trx) => {
      const orgId = await this.insert({ name, kind: 'org' }, trx);
      if (orgId === null) return null;
      const at = await this.store.clock(trx);
      await trx.insertInto('organization_members').values({ organization_id: orgId, account_id: creatorId, created_at: at }).execute();
      const team = await trx.insertInto('teams').values({ organization_id: orgId, name: OWNERS_TEAM, created_at: at }).returning('id').executeTakeFirstOrThrow();
      await trx.insertInto('team_members').values({ team_id: Number(team.id), account_id: creatorId }).execute();
      return orgId;
    });
  }

  async addMember(orgId: number, accountId: number, db?: Db): Promise<void> {
    const run = async (d: Db) => {
      await d
        .insertInto('organization_members')
        .values({ organization_id: orgId, account_id: accountId, created_at: await this.store.clock(d) })
        .onConflict((oc) => oc.columns(['organization_id', 'account_id']).doNothing())
        .execute();
    };
    await (db ? run(db) : this.store.writing(() => run(this.db)));
  }

  /** Removes a member from the organization and all its teams; refused ('last owner') when they are the owners team's last member. */
  async removeMember(orgId: number, accountId: number): Promise<'removed' | 'not a member' | 'last owner'> {
    return this.store.writeTransaction(async (trx) => {
      const member = await trx.selectFrom('organization_members').select('account_id').where('organization_id', '=', orgId).where('account_id', '=', accountId).executeTakeFirst();
      if (!member) return 'not a member';
      if (await this.isLastOwner(orgId, accountId, trx)) return 'last owner';
      const teams = trx.selectFrom('teams').select('id').where('organization_id', '=', orgId);
      await trx.deleteFrom('team_members').where('account_id', '=', accountId).where('team_id', 'in', teams).execute();
      await trx.deleteFrom('organization_members').where('organization_id', '=', orgId).where('account_id', '=', accountId).execute();
      return 'removed';
    });
  }

  /** Ids of the members of an organization's owners team. */
  private async ownerIds(orgId: number, db: Db): Promise<number[]> {
    const rows = await db
      .selectFrom('team_members as tm')
      .innerJoin('teams as t', 't.id', 'tm.team_id')
      .select('tm.account_id')
      .where('t.organization_id', '=', orgId)
      .where('t.name', '=', OWNERS_TEAM)
      .execute();
    return rows.map((r) => Number(r.account_id));
  }

  private async isLastOwner(orgId: number, accountId: number, db: Db): Promise<boolean> {
    const owners = await this.ownerIds(orgId, db);
    return owners.length === 1 && owners[0] === accountId;
  }

  async members(orgId: number): Promise<{ name: string; owner: boolean }[]> {
    const rows = await this.db
      .selectFrom('organization_members as m')
      .innerJoin('accounts as a', 'a.id', 'm.account_id')
      .select(['a.name', 'a.id'])
      .where('m.organization_id', '=', orgId)
      .orderBy('a.name')
      .execute();
    const owners = new Set(await this.ownerIds(orgId, this.db));
    return rows.map((r) => ({ name: r.name, owner: owners.has(Number(r.id)) }));
  }

  async isMember(orgId: number, accountId: number): Promise<boolean> {
    const row = await this.db.selectFrom('organization_members').select('account_id').where('organization_id', '=', orgId).where('account_id', '=', accountId).executeTakeFirst();
    return row !== undefined;
  }

  async organizationsOf(accountId: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom('organization_members as m')
      .innerJoin('accounts as o', 'o.id', 'm.organization_id')
      .select('o.name')
      .where('m.account_id', '=', accountId)
      .orderBy('o.name')
      .execute();
    return rows.map((r) => r.name);
  }

  // ---- teams -----------------------------------------------------------------

  async createTeam(orgId: number, name: string): Promise<number | null> {
    return this.store.writing(async () => {
      const row = await this.db
        .insertInto('teams')
        .values({ organization_id: orgId, name, created_at: await this.store.clock() })
        .onConflict((oc) => oc.columns(['organization_id', 'name']).doNothing())
        .returning('id')
        .executeTakeFirst();
      return row ? Number(row.id) : null;
    });
  }

  async team(orgId: number, name: string): Promise<TeamRow | null> {
    const row = await this.db.selectFrom('teams').select(['id', 'organization_id', 'name']).where('organization_id', '=', orgId).where('name', '=', name).executeTakeFirst();
    return row ? { id: Number(row.id), organizationId: Number(row.organization_id), name: row.name } : null;
  }

  async teams(orgId: number): Promise<TeamRow[]> {
    const rows = await this.db.selectFrom('teams').select(['id', 'organization_id', 'name']).where('organization_id', '=', orgId).orderBy('name').execute();
    return rows.map((row) => ({ id: Number(row.id), organizationId: Number(row.organization_id), name: row.name }));
  }

  async deleteTeam(teamId: number): Promise<boolean> {
    const r = await this.store.writing(() => this.db.deleteFrom('teams').where('id', '=', teamId).where('name', '<>', OWNERS_TEAM).executeTakeFirst());
    return Number(r.numDeletedRows) > 0;
  }

  /** Adds an account to a team, and to the team's organization if it is not a member yet. */
  async addTeamMember(team: TeamRow, accountId: number): Promise<void> {
    await this.store.writeTransaction(async (trx) => {
      await this.addMember(team.organizationId, accountId, trx);
      await trx
        .insertInto('team_members')
        .values({ team_id: team.id, account_id: accountId })
        .onConflict((oc) => oc.columns(['team_id', 'account_id']).doNothing())
        .execute();
    });
  }

  async removeTeamMember(team: TeamRow, accountId: number): Promise<'removed' | 'not a member' | 'last owner'> {
    return this.store.writeTransaction(async (trx) => {
      if (team.name === OWNERS_TEAM && (await this.isLastOwner(team.organizationId, accountId, trx))) return 'last owner';
      const r = await trx.deleteFrom('team_members').where('team_id', '=', team.id).where('account_id', '=', accountId).executeTakeFirst();
      return Number(r.numDeletedRows) > 0 ? 'removed' : 'not a member';
    });
  }

  async teamMembers(teamId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('team_members as tm').innerJoin('accounts as a', 'a.id', 'tm.account_id').select('a.name').where('tm.team_id', '=', teamId).orderBy('a.name').execute();
    return rows.map((r) => r.name);
  }

  /** Sets (or with 'none', removes) a team's permission on a repository name or '*'. */
  async setTeamPermission(teamId: number, repository: string, permission: GrantedPermission | 'none'): Promise<void> {
    await this.store.writing(async () => {
      if (permission === 'none') await this.db.deleteFrom('team_permissions').where('team_id', '=', teamId).where('repository', '=', repository).execute();
      else
        await this.db
          .insertInto('team_permissions')
          .values({ team_id: teamId, repository, permission })
          .onConflict((oc) => oc.columns(['team_id', 'repository']).doUpdateSet({ permission }))
          .execute();
    });
  }

  async teamPermissions(teamId: number): Promise<{ repository: string; permission: GrantedPermission }[]> {
    return this.db.selectFrom('team_permissions').select(['repository', 'permission']).where('team_id', '=', teamId).orderBy('repository').execute();
  }

  // ---- collaborators ---------------------------------------------------------

  async setCollaborator(repository: string, accountId: number, permission: GrantedPermission | 'none'): Promise<void> {
    await this.store.writing(async () => {
      if (permission === 'none') {
        await this.db.deleteFrom('collaborators').where('repository', '=', repository).where('account_id', '=', accountId).execute();
        return;
      }
      await this.db
        .insertInto('collaborators')
        .values({ repository, account_id: accountId, permission, created_at: await this.store.clock() })
        .onConflict((oc) => oc.columns(['repository', 'account_id']).doUpdateSet({ permission }))
        .execute();
    });
  }

  async collaborators(repository: string): Promise<{ name: string; permission: GrantedPermission }[]> {
    return this.db
      .selectFrom('collaborators as c')
      .innerJoin('accounts as a', 'a.id', 'c.account_id')
      .select(['a.name', 'c.permission'])
      .where('c.repository', '=', repository)
      .orderBy('a.name')
      .execute();
  }

  // ---- repositories ----------------------------------------------------------

  async repository(name: string): Promise<{ exists: boolean; visibility: 'public' | 'private' }> {
    const row = await this.db.selectFrom('repositories').select('visibility').where('name', '=', name).executeTakeFirst();
    return row ? { exists: true, visibility: row.visibility } : { exists: false, visibility: 'private' };
  }

  async setVisibility(name: string, visibility: 'public' | 'private'): Promise<boolean> {
    const r = await this.store.writing(() => this.db.updateTable('repositories').set({ visibility }).where('name', '=', name).executeTakeFirst());
    return Number(r.numUpdatedRows) > 0;
  }

  // ---- what the access facts are built from ------------------------------------

  /**
   * A user's permissions on `repository` through the teams of organization
   * `orgId`: the owners team counts as admin on everything; other teams by
   * their rows for `repository` or '*'. With `namespaceOnly`, only the
   * owners team and '*' rows count (a name that does not exist yet).
   */
  async teamPermission(orgId: number, accountId: number, repository: string, namespaceOnly: boolean): Promise<GrantedPermission | 'none'> {
    const rows = await sql<{ team: string; permission: string | null }>`
      SELECT t.name AS team, tp.permission AS permission
      FROM team_members tm
      JOIN teams t ON t.id = tm.team_id
      LEFT JOIN team_permissions tp ON tp.team_id = t.id AND tp.repository IN (${namespaceOnly ? '*' : repository}, '*')
      WHERE tm.account_id = ${accountId} AND t.organization_id = ${orgId}`.execute(this.db);
    return strongest(rows.rows.map((r) => (r.team === OWNERS_TEAM ? 'admin' : (r.permission ?? 'none'))));
  }

  async collaboratorPermission(repository: string, accountId: number): Promise<GrantedPermission | 'none'> {
    const row = await this.db.selectFrom('collaborators').select('permission').where('repository', '=', repository).where('account_id', '=', accountId).executeTakeFirst();
    return row?.permission ?? 'none';
  }
}
