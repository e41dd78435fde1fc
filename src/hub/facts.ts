/**
 * Loads what the access decision needs to know about one repository for one
 * principal (src/access/types.ts RepositoryFacts), following the ownership
 * rules: a repository's first path component is its namespace; a user owns
 * theirs; an organization's owners team owns its own, other teams hold what
 * their rows say (a name or '*'); collaborators hold what they were given on
 * a user's repository; a robot holds exactly its rows, and nothing once
 * expired or disabled. `library/…`, one-component names and every namespace
 * that is no account belong to administrators. For a repository that does
 * not exist yet, only what reaches the whole namespace counts (ownership,
 * owners team, '*'), plus a robot's row for that exact name.
 */
import type { Permission, Principal, RepositoryFacts } from '../access/types.js';
import type { HubContext } from './context.js';
import { namespaceOf } from './names.js';

export class FactsLoader {
  constructor(private readonly hub: HubContext) {}

  async facts(principal: Principal, name: string): Promise<RepositoryFacts> {
    const repo = await this.hub.accounts.repository(name);
    return { name, exists: repo.exists, visibility: repo.visibility, permission: await this.permission(principal, name, repo.exists) };
  }

  /** The principal's own permission on `name` (not counting visibility, nor an administrator's everything). */
  async permission(principal: Principal, name: string, exists: boolean): Promise<Permission> {
    if (principal.kind === 'robot') {
      const robot = await this.hub.credentials.robotById(principal.id);
      if (!robot || robot.disabledAt !== null || (robot.expiresAt !== null && robot.expiresAt <= (await this.hub.store.clock()))) return 'none';
      // A robot acts only inside its organization.
      if (namespaceOf(name) !== robot.organization || !name.includes('/')) return 'none';
      return this.hub.credentials.robotPermission(principal.id, name);
    }
    if (principal.kind !== 'user') return 'none';
    if (!name.includes('/')) return 'none';
    const ns = namespaceOf(name);
    if (ns === principal.name) return 'admin';
    const owner = await this.hub.accounts.byName(ns);
    if (!owner) return 'none';
    if (owner.kind === 'org') return this.hub.accounts.teamPermission(owner.id, principal.id, name, !exists);
    return exists ? this.hub.accounts.collaboratorPermission(name, principal.id) : 'none';
  }

  /** A principal's role in an organization: for the API's organization settings (owners manage members and teams). */
  async organizationRole(principal: Principal, org: string): Promise<'owner' | 'member' | null> {
    if (principal.kind !== 'user') return null;
    const o = await this.hub.accounts.byName(org);
    if (!o || o.kind !== 'org') return null;
    if (principal.admin) return 'owner';
    const me = (await this.hub.accounts.members(o.id)).find((m) => m.name === principal.name);
    return me ? (me.owner ? 'owner' : 'member') : null;
  }
}
