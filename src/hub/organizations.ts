/**
 * Organizations and their teams. An organization is created with an
 * `owners` team holding its creator; owners may do everything in its
 * namespace, and its last owner cannot leave (nor be removed). Other teams
 * hold per-repository permissions (read, write, admin), or one on '*' for
 * every repository of the organization, existing or to come.
 */
import { OWNERS_TEAM, type GrantedPermission, type TeamRow } from '../metadata/accounts.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import { refuseHeldNamespace } from './accounts.js';
import { accountNameProblem, namespaceOf, robotNameProblem } from './names.js';

export const PERMISSIONS = ['read', 'write', 'admin'] as const;

export function checkPermission(p: string): GrantedPermission | 'none' {
  if (p === 'none' || (PERMISSIONS as readonly string[]).includes(p)) return p as GrantedPermission | 'none';
  throw new HubError('INVALID', `permission must be one of read, write, admin (or none to remove), got ${JSON.stringify(p)}`);
}

/** The id of the organization `name`; NOT_FOUND when there is none (or it is a user). */
export async function organizationId(hub: HubContext, name: string): Promise<number> {
  const a = await hub.accounts.byName(name);
  if (!a || a.kind !== 'org') throw new HubError('NOT_FOUND', `no organization ${name}`);
  return a.id;
}

export class OrganizationService {
  constructor(private readonly hub: HubContext) {}

  private org(name: string): Promise<number> {
    return organizationId(this.hub, name);
  }

  private async userId(name: string): Promise<number> {
    const a = await this.hub.accounts.byName(name);
    if (!a || a.kind !== 'user') throw new HubError('NOT_FOUND', `no user ${name}`);
    return a.id;
  }

  private async team(org: string, team: string): Promise<TeamRow> {
    const t = await this.hub.accounts.team(await this.org(org), team);
    if (!t) throw new HubError('NOT_FOUND', `no team ${team} in ${org}`);
    return t;
  }

  /** `adopt`: the repositories already under the name become the organization's (an administrator's hand-over). */
  async create(name: string, owner: string, actor: Actor, opts: { adopt?: boolean } = {}): Promise<void> {
    const problem = accountNameProblem(name);
    if (problem) throw new HubError('NAME_INVALID', `name ${JSON.stringify(name)} ${problem}`);
    if (!opts.adopt) await refuseHeldNamespace(this.hub, name);
    const ownerId = await this.userId(owner);
    if ((await this.hub.accounts.createOrganization(name, ownerId)) === null) throw new HubError('NAME_TAKEN', `the name ${name} is taken`);
    await this.hub.audit(actor, 'org.create', name, { owner });
  }

  async members(org: string): Promise<{ name: string; owner: boolean }[]> {
    return this.hub.accounts.members(await this.org(org));
  }

  async addMember(org: string, user: string, actor: Actor): Promise<void> {
    await this.hub.accounts.addMember(await this.org(org), await this.userId(user));
    await this.hub.audit(actor, 'org.member.add', org, { member: user });
  }

  /** Removes a member from the organization and every team of it; refused for its last owner. */
  async removeMember(org: string, user: string, actor: Actor): Promise<void> {
    const outcome = await this.hub.accounts.removeMember(await this.org(org), await this.userId(user));
    if (outcome === 'not a member') throw new HubError('NOT_FOUND', `${user} is not a member of ${org}`);
    if (outcome === 'last owner') throw new HubError('LAST_OWNER', `${user} is the last owner of ${org}`);
    await this.hub.audit(actor, 'org.member.remove', org, { member: user });
  }

  async teams(org: string): Promise<string[]> {
    return (await this.hub.accounts.teams(await this.org(org))).map((t) => t.name);
  }

  async createTeam(org: string, team: string, actor: Actor): Promise<void> {
    const problem = robotNameProblem(team);
    if (problem) throw new HubError('NAME_INVALID', `team name ${JSON.stringify(team)} ${problem}`);
    if ((await this.hub.accounts.createTeam(await this.org(org), team)) === null) throw new HubError('NAME_TAKEN', `${org} has a team ${team} already`);
    await this.hub.audit(actor, 'team.create', `${org}/${team}`);
  }

  async deleteTeam(org: string, team: string, actor: Actor): Promise<void> {
    if (team === OWNERS_TEAM) throw new HubError('INVALID', 'the owners team cannot be deleted');
    if (!(await this.hub.accounts.deleteTeam((await this.team(org, team)).id))) throw new HubError('NOT_FOUND', `no team ${team} in ${org}`);
    await this.hub.audit(actor, 'team.delete', `${org}/${team}`);
  }

  /** Adds a user to a team (and to the organization if they are not a member yet). */
  async addTeamMember(org: string, team: string, user: string, actor: Actor): Promise<void> {
    await this.hub.accounts.addTeamMember(await this.team(org, team), await this.userId(user));
    await this.hub.audit(actor, 'team.member.add', `${org}/${team}`, { member: user });
  }

  async removeTeamMember(org: string, team: string, user: string, actor: Actor): Promise<void> {
    const outcome = await this.hub.accounts.removeTeamMember(await this.team(org, team), await this.userId(user));
    if (outcome === 'not a member') throw new HubError('NOT_FOUND', `${user} is not in ${org}/${team}`);
    if (outcome === 'last owner') throw new HubError('LAST_OWNER', `${user} is the last owner of ${org}`);
    await this.hub.audit(actor, 'team.member.remove', `${org}/${team}`, { member: user });
  }

  async teamMembers(org: string, team: string): Promise<string[]> {
    return this.hub.accounts.teamMembers((await this.team(org, team)).id);
  }

  /**
   * Grants a team `permission` on `repository` (a full name inside the
   * organization, or '*' for all of them); 'none' removes the grant. The
   * repository need not exist yet.
   */
  async setTeamPermission(org: string, team: string, repository: string, permission: string, actor: Actor): Promise<void> {
    const p = checkPermission(permission);
    if (team === OWNERS_TEAM) throw new HubError('INVALID', 'the owners team holds admin on everything already');
    if (repository !== '*' && namespaceOf(repository) !== org) throw new HubError('INVALID', `${repository} is not a repository of ${org}`);
    await this.hub.accounts.setTeamPermission((await this.team(org, team)).id, repository, p);
    await this.hub.audit(actor, 'team.permission', `${org}/${team}`, { repository, permission: p });
  }

  async teamPermissions(org: string, team: string): Promise<{ repository: string; permission: GrantedPermission }[]> {
    return this.hub.accounts.teamPermissions((await this.team(org, team)).id);
  }
}
