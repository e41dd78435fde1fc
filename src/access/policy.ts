/**
 * The one access decision: may this principal do this action on this
 * repository? A pure function of the principal, the action and the facts
 * the caller loaded (src/hub/facts.ts), so every route, listing and token
 * grant asks the same question and gets the same answer.
 *
 * Whoever may not read a repository must not learn whether it exists: a
 * denial is the same for a private repository and a missing one, and the
 * edge answers both alike (401 with a challenge to anonymous callers, 403
 * DENIED otherwise). A principal allowed to pull a missing repository (it
 * could read it if it existed) gets the registry's own 404.
 */
import type { Action, GrantedAccess, Permission, Principal, RepositoryFacts, TokenScope } from './types.js';

/** 'open': accounts are off (anonymous or htpasswd, as registry:2); 'accounts': the Hub decides. */
export type AccessMode = 'open' | 'accounts';

export interface PolicyOptions {
  /** auth.accounts.anonymouspull: public repositories may be pulled without credentials. */
  anonymousPull: boolean;
}

export type DenyReason =
  /** anonymous, and the repository is not publicly pullable (or does not exist) */
  | 'credentials required'
  /** the principal's permission on the repository is below what the action needs */
  | 'insufficient permission'
  /** the personal access token used does not carry the scope the action needs */
  | 'token scope'
  /** a token's access list does not hold this action */
  | 'not granted'
  /** a principal that has no place in this mode (an htpasswd user with accounts on) */
  | 'unknown principal';

export type Decision = { allowed: true } | { allowed: false; reason: DenyReason };

const ALLOW: Decision = { allowed: true };
const deny = (reason: DenyReason): Decision => ({ allowed: false, reason });

const RANK: Record<Permission, number> = { none: 0, read: 1, write: 2, admin: 3 };

/** What each action needs: pull reads, push writes, delete administers. */
export const REQUIRED: Record<Action, Permission> = { pull: 'read', push: 'write', delete: 'admin' };

export function atLeast(have: Permission, need: Permission): boolean {
  return RANK[have] >= RANK[need];
}

export function stronger(a: Permission, b: Permission): Permission {
  return RANK[a] >= RANK[b] ? a : b;
}

/** The actions a personal access token's scopes let through: read → pull; write → pull, push; delete → pull, push, delete. */
export function scopeAllows(scopes: readonly TokenScope[], action: Action): boolean {
  const top = Math.max(0, ...scopes.map((s) => ({ read: 1, write: 2, delete: 3 })[s] ?? 0));
  return top >= { pull: 1, push: 2, delete: 3 }[action];
}

/** Whether a token's access list holds `action` on repository `name` (a '*' action holds every one). */
export function accessHolds(access: readonly GrantedAccess[], type: string, name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

/**
 * The permission a principal holds on a repository, visibility included:
 * its own (facts.permission, or admin for an administrator), raised to read
 * when the repository exists and is public.
 */
export function effectivePermission(principal: Principal, facts: RepositoryFacts, options: PolicyOptions): Permission {
  const publicRead: Permission = facts.exists && facts.visibility === 'public' ? 'read' : 'none';
  switch (principal.kind) {
    case 'anonymous':
      return options.anonymousPull ? publicRead : 'none';
    case 'user':
      return principal.admin ? 'admin' : stronger(facts.permission, publicRead);
    case 'robot':
      return stronger(facts.permission, publicRead);
    default:
      return 'none';
  }
}

export function decide(mode: AccessMode, principal: Principal, action: Action, facts: RepositoryFacts, options: PolicyOptions = { anonymousPull: true }): Decision {
  // A token's access list is all its bearer may do, whoever issued it.
  if (principal.kind === 'granted') return accessHolds(principal.access, 'repository', facts.name, action) ? ALLOW : deny('not granted');
  if (mode === 'open') {
    // As registry:2: without auth everyone may do everything; with htpasswd, every valid user.
    if (principal.kind === 'anonymous' || principal.kind === 'htpasswd') return ALLOW;
  }
  if (principal.kind === 'htpasswd') return deny('unknown principal');
  const have = effectivePermission(principal, facts, options);
  if (!atLeast(have, REQUIRED[action])) return deny(principal.kind === 'anonymous' ? 'credentials required' : 'insufficient permission');
  if (principal.kind === 'user' && principal.token && !scopeAllows(principal.token.scopes, action)) return deny('token scope');
  return ALLOW;
}

/**
 * Listing the catalog: everyone may ask (the listing is filtered to what
 * they may read, inside its query); a token's bearer only with
 * `registry:catalog:*`, as distribution requires.
 */
export function decideCatalog(mode: AccessMode, principal: Principal): Decision {
  if (principal.kind === 'granted') return accessHolds(principal.access, 'registry', 'catalog', '*') ? ALLOW : deny('not granted');
  if (principal.kind === 'htpasswd' && mode === 'accounts') return deny('unknown principal');
  return ALLOW;
}
