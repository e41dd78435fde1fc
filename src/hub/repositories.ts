/**
 * Repository settings the Hub keeps: visibility and direct collaborators
 * (on a user's repositories; an organization grants through teams).
 */
import type { GrantedPermission } from '../metadata/accounts.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import { namespaceOf } from './names.js';
import { checkPermission } from './organizations.js';

export class RepositoryService {
  constructor(private readonly hub: HubContext) {}

  /** Visibility of an existing repository, or null when there is none. */
  async visibility(name: string): Promise<'public' | 'private' | null> {
    const r = await this.hub.accounts.repository(name);
    return r.exists ? r.visibility : null;
  }

  async setVisibility(name: string, visibility: 'public' | 'private', actor: Actor): Promise<void> {
    if (visibility !== 'public' && visibility !== 'private') throw new HubError('INVALID', `visibility must be public or private, got ${JSON.stringify(visibility)}`);
    if (!(await this.hub.accounts.setVisibility(name, visibility))) throw new HubError('NOT_FOUND', `no repository ${name}`);
    await this.hub.audit(actor, 'repository.visibility', name, { visibility });
  }

  /** Gives a user `permission` on an existing repository of a user's namespace ('none' removes it). */
  async setCollaborator(repository: string, user: string, permission: string, actor: Actor): Promise<void> {
    const p = checkPermission(permission);
    const owner = await this.hub.accounts.byName(namespaceOf(repository));
    if (!owner || owner.kind !== 'user' || !repository.includes('/')) throw new HubError('INVALID', `collaborators are for repositories of a user (an organization grants through teams): ${repository}`);
    if (!(await this.hub.accounts.repository(repository)).exists) throw new HubError('NOT_FOUND', `no repository ${repository}`);
    const account = await this.hub.accounts.byName(user);
    if (!account || account.kind !== 'user') throw new HubError('NOT_FOUND', `no user ${user}`);
    if (account.id === owner.id) throw new HubError('INVALID', `${user} owns ${repository}`);
    await this.hub.accounts.setCollaborator(repository, account.id, p);
    await this.hub.audit(actor, 'collaborator.set', repository, { user, permission: p });
  }

  async collaborators(repository: string): Promise<{ name: string; permission: GrantedPermission }[]> {
    return this.hub.accounts.collaborators(repository);
  }
}
