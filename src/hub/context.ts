/** What every Hub service shares: the queries, the settings, and who is acting (for the audit log). */
import { AccountQueries } from '../metadata/accounts.js';
import { CredentialQueries, type NewAuditEntry } from '../metadata/credentials.js';
import { DiscoveryQueries, type NewActivity } from '../metadata/discovery.js';
import type { MetadataStore } from '../metadata/store.js';

export interface HubSettings {
  /** Who may create an account: anyone, nobody (administrators, through the CLI or API), or whoever holds an invitation. */
  registration: 'open' | 'closed' | 'invite';
  /** Visibility of repositories created by a push (given to the metadata store when it is opened). */
  defaultVisibility: 'private' | 'public';
  /** Public repositories may be pulled without credentials. */
  anonymousPull: boolean;
  /** Lifetime of refresh tokens (ms). */
  refreshLifetimeMs: number;
  /** Failed logins allowed per account and per client address within `windowMs`. */
  loginLimits: { perAccount: number; perClient: number; windowMs: number };
}

export const DEFAULT_SETTINGS: HubSettings = {
  registration: 'closed',
  defaultVisibility: 'private',
  anonymousPull: true,
  refreshLifetimeMs: 720 * 3_600_000,
  loginLimits: { perAccount: 10, perClient: 50, windowMs: 15 * 60_000 },
};

/** Who does something, for the audit log: an account (by name and id), or the command line / the system when `name` is null. */
export interface Actor {
  name: string | null;
  id?: number | null;
  requestId?: string | null;
  client?: string | null;
}

/** The command line (an operator with the server's configuration): audited as such. */
export const CLI: Actor = { name: null, client: 'cli' };

export class HubContext {
  readonly accounts: AccountQueries;
  readonly credentials: CredentialQueries;
  readonly discovery: DiscoveryQueries;
  constructor(
    readonly store: MetadataStore,
    readonly settings: HubSettings,
  ) {
    this.accounts = new AccountQueries(store);
    this.credentials = new CredentialQueries(store);
    this.discovery = new DiscoveryQueries(store);
  }

  audit(actor: Actor, action: string, target: string | null, detail: Record<string, unknown> | null = null): Promise<void> {
    const entry: NewAuditEntry = { actor: actor.name, actorId: actor.id ?? null, action, target, requestId: actor.requestId ?? null, client: actor.client ?? null, detail };
    const activity = repositoryActivity(actor, action, target, detail);
    return activity ? this.credentials.appendAudit(entry).then(() => this.discovery.appendActivity([activity])) : this.credentials.appendAudit(entry);
  }
}

/** The audited acts that are also a repository's activity (visibility and permission changes), as its activity entry. */
function repositoryActivity(actor: Actor, action: string, target: string | null, detail: Record<string, unknown> | null): NewActivity | null {
  let repository: string | null = null;
  let kind: string;
  if (action === 'repository.visibility') [repository, kind] = [target, 'visibility'];
  else if (action === 'collaborator.set') [repository, kind] = [target, 'permission'];
  else if (action === 'team.permission' && typeof detail?.repository === 'string' && detail.repository !== '*') {
    [repository, kind] = [detail.repository, 'permission'];
    detail = { ...detail, team: target };
  } else return null;
  if (!repository) return null;
  const slash = repository.indexOf('/');
  return { repository, namespace: slash < 0 ? '' : repository.slice(0, slash), actor: actor.name, actorId: actor.id ?? null, action: kind, tag: null, digest: null, detail };
}
