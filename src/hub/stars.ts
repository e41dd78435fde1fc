/**
 * Stars and follows. A user stars a repository they may read (star_count
 * kept on the repository's row, in the same transaction as the star); a
 * user follows accounts (what happens in their namespace and what they do)
 * and repositories, by name; their feed is ActivityService.read(…, 'feed').
 */
import { decide, type AccessMode, type PolicyOptions } from '../access/policy.js';
import type { Principal } from '../access/types.js';
import { accountNameProblem } from './names.js';
import { activityNamespace, type ActivityService } from './activity.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import type { FactsLoader } from './facts.js';
import { readableCondition } from './listing.js';

function signedIn(principal: Principal): { id: number; name: string } {
  if (principal.kind !== 'user') throw new HubError('INVALID', 'stars and follows are for signed-in users');
  return principal;
}

export class StarService {
  constructor(
    private readonly hub: HubContext,
    private readonly facts: FactsLoader,
    private readonly mode: AccessMode,
    private readonly policy: PolicyOptions,
    private readonly activity: ActivityService,
  ) {}

  private async readable(principal: Principal, repository: string): Promise<void> {
    const facts = await this.facts.facts(principal, repository);
    if (!facts.exists || !decide(this.mode, principal, 'pull', facts, this.policy).allowed) throw new HubError('NOT_FOUND', `no repository ${repository}`);
  }

  /** Stars or unstars; returns whether it changed anything (starring twice counts once). */
  async setStar(principal: Principal, repository: string, starred: boolean, actor: Actor): Promise<boolean> {
    const user = signedIn(principal);
    await this.readable(principal, repository);
    const changed = await this.hub.discovery.setStar(user.id, repository, starred);
    if (changed === null) throw new HubError('NOT_FOUND', `no repository ${repository}`);
    if (changed) {
      await this.activity.record([{ repository, namespace: activityNamespace(repository), actor: actor.name, actorId: actor.id, action: starred ? 'star' : 'unstar', tag: null, digest: null }]);
    }
    return changed;
  }

  async hasStarred(principal: Principal, repository: string): Promise<boolean> {
    return principal.kind === 'user' ? this.hub.discovery.hasStarred(principal.id, repository) : false;
  }

  /** What `user` starred, as `reader` may see it. */
  async starredBy(reader: Principal, user: string, page: { page?: number; pageSize?: number } = {}): Promise<{ name: string; starredAt: number }[]> {
    const account = await this.hub.accounts.byName(user);
    if (!account || account.kind !== 'user') throw new HubError('NOT_FOUND', `no user ${user}`);
    const pageSize = Math.min(Math.max(Math.floor(page.pageSize ?? 25), 1), 100);
    const p = Math.max(Math.floor(page.page ?? 1), 1);
    const readable = readableCondition(this.mode, reader, this.policy, { name: 'r.name', visibility: 'r.visibility', at: await this.hub.store.clock() });
    return this.hub.discovery.starred(account.id, readable, { limit: pageSize, offset: (p - 1) * pageSize });
  }

  /** Follows (or stops following) a user, an organization or a repository. */
  async setFollow(principal: Principal, target: { account: string } | { repository: string }, following: boolean): Promise<boolean> {
    const user = signedIn(principal);
    if ('account' in target) {
      if (accountNameProblem(target.account) !== null && target.account !== 'library') throw new HubError('NOT_FOUND', `no account ${target.account}`);
      const account = target.account === 'library' ? null : await this.hub.accounts.byName(target.account);
      if (target.account !== 'library' && !account) throw new HubError('NOT_FOUND', `no account ${target.account}`);
      if (account?.id === user.id) throw new HubError('INVALID', 'one does not follow oneself');
      return this.hub.discovery.setFollow(user.id, 'account', target.account, following);
    }
    if (following) await this.readable(principal, target.repository);
    return this.hub.discovery.setFollow(user.id, 'repository', target.repository, following);
  }

  async following(principal: Principal): Promise<{ kind: 'account' | 'repository'; target: string; since: number }[]> {
    return this.hub.discovery.following(signedIn(principal).id);
  }
}
