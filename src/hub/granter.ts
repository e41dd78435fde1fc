/**
 * What a token grants: of the access a client asked for, what the policy
 * allows (Docker token specification: the intersection). Actions the policy
 * does not know, and resource types other than repositories and the
 * catalog (`*`, and `search` for docker search), are left out; so are
 * entries left with no action.
 */
import { decide, decideCatalog } from '../access/policy.js';
import type { Action, GrantedAccess, Principal } from '../access/types.js';
import type { AccessGranter } from '../auth/token/types.js';
import type { HubContext } from './context.js';
import type { FactsLoader } from './facts.js';

const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

export class HubAccessGranter implements AccessGranter {
  constructor(
    private readonly hub: HubContext,
    private readonly facts: FactsLoader,
  ) {}

  async grant(principal: Principal, requested: GrantedAccess[]): Promise<GrantedAccess[]> {
    const options = { anonymousPull: this.hub.settings.anonymousPull };
    const granted: GrantedAccess[] = [];
    for (const r of requested) {
      if (r.type === 'registry' && r.name === 'catalog') {
        if (!decideCatalog('accounts', principal).allowed) continue;
        // '*' lists the catalog; 'search' is docker search's (dockerd asks registry:catalog:search). Both
        // answer only what the holder may read, so whoever may list may have them.
        const actions = r.actions.filter((a) => a === '*' || a === 'search');
        if (actions.length) granted.push({ type: 'registry', name: 'catalog', actions });
        continue;
      }
      if (r.type !== 'repository') continue;
      const facts = await this.facts.facts(principal, r.name);
      const allowed = ACTIONS.filter((a) => decide('accounts', principal, a, facts, options).allowed);
      // '*' asks for everything: granted as '*' only when every action is.
      const actions = [...new Set(r.actions.flatMap((a) => (a === '*' ? (allowed.length === ACTIONS.length ? ['*'] : []) : allowed.includes(a as Action) ? [a] : [])))];
      if (actions.length) granted.push({ type: r.type, name: r.name, actions });
    }
    return granted;
  }
}
