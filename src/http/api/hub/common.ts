/**
 * What the handlers share: the services they run on, who-may-call checks,
 * responses, and pagination (`?n=&last=` with a `Link: <…>; rel="next"`
 * header, the registry's own style, on every list).
 */
import type { z } from 'zod';
import { decide, type AccessMode, type PolicyOptions } from '../../../access/policy.js';
import type { Action, Principal, RepositoryFacts } from '../../../access/types.js';
import type { Discovery, Hub } from '../../../hub/index.js';
import type { HubContext } from '../../../hub/context.js';
import type { Principals } from '../../../hub/credentials.js';
import type { MetadataStore } from '../../../metadata/store.js';
import { ApiError, denied, nameUnknown, notFound, unauthorized } from './errors.js';
import type { SessionStore } from './sessions.js';
import type { ImageSource } from './images.js';
import type { ApiResponse, HandlerInput, Operation, OperationSpec } from './types.js';

export interface Services {
  /**
   * 'accounts': the Hub's own decision. 'open' (no auth, or htpasswd): as the
   * registry, whoever the edge let in reads every repository, and only
   * reading operations are served (createHubApi's OPEN_OPERATIONS).
   */
  mode: AccessMode;
  hub: Hub;
  store: MetadataStore;
  context: HubContext;
  principals: Principals;
  sessions: SessionStore;
  policy: PolicyOptions;
  /** The registry's repository delete (Registry.deleteRepository): its batches, events and refusals. */
  deleteRepository(name: string, actor: string | undefined): Promise<{ manifests: number; tags: number }>;
  /** Search, pages, stars, follows, activity, webhooks: set when createHubApi was given one (discovery.ts's operations are routed then). */
  discovery?: Discovery;
  /** Manifests, configs, referrers and tag deletes (images.ts): the registry's, for the tag pages. */
  images?: ImageSource;
}

/** Declares an operation with its handler typed by its own schemas. */
export function operation<Q extends z.ZodType, B extends z.ZodType | undefined, R extends z.ZodType | undefined>(
  spec: OperationSpec<Q, B, R>,
  handler: (s: Services, input: HandlerInput<Record<string, string>, z.output<Q>, B extends z.ZodType ? z.output<B> : undefined>) => Promise<ApiResponse>,
): Operation<Services> {
  return { ...spec, handler: handler as Operation<Services>['handler'] } as Operation<Services>;
}

export const respond = (status: number, body?: unknown, headers: Record<string, string> = {}): ApiResponse => ({ status, body, headers, cookies: [] });
export const noContent = (): ApiResponse => respond(204);

// ---- who may call ------------------------------------------------------------------

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** An account (not a robot, not a bare token grant); 401 for anonymous callers. */
export function requireUser(input: HandlerInput<unknown, unknown, unknown>): UserPrincipal {
  const p = input.principal;
  if (p.kind === 'anonymous') throw unauthorized();
  if (p.kind !== 'user') throw denied('this needs a user account');
  return p;
}

/**
 * Changing the account itself (password, email, tokens, deleting it) needs
 * the account's own credentials: a password login or a session opened with
 * one. A personal access token never mints or revokes credentials.
 */
export function requireCredentialsOwner(input: HandlerInput<unknown, unknown, unknown>): UserPrincipal {
  const p = requireUser(input);
  if (p.token) throw denied('a personal access token cannot manage the account: log in with the password');
  return p;
}

/**
 * Managing organizations, teams, robots, collaborators and invitations:
 * a personal access token must carry the delete scope (the one that lets
 * through administration of repositories too).
 */
export function requireManager(input: HandlerInput<unknown, unknown, unknown>): UserPrincipal {
  const p = requireUser(input);
  if (p.token && !p.token.scopes.includes('delete')) throw denied('the personal access token needs the delete scope for this');
  return p;
}

export function isAdmin(p: Principal): boolean {
  return p.kind === 'user' && p.admin && (!p.token || p.token.scopes.includes('delete'));
}

export function requireAdmin(input: HandlerInput<unknown, unknown, unknown>): UserPrincipal {
  const p = requireUser(input);
  if (!isAdmin(p)) throw denied('this is for administrators');
  return p;
}

/**
 * The caller's role in an organization; whoever is no member (and no
 * administrator) gets the answer of a missing organization.
 */
export async function organizationRole(s: Services, principal: Principal, org: string, need: 'member' | 'owner'): Promise<'owner' | 'member'> {
  const role = principal.kind === 'user' ? await s.hub.facts.organizationRole(principal, org) : null;
  if (!role) throw notFound(`organization ${org}`);
  if (need === 'owner' && role !== 'owner') throw denied(`this is for the owners of ${org}`);
  return role;
}

/**
 * The facts of a repository the caller may read, after checking `action`
 * with the one decision. A repository the caller may not read is answered
 * exactly as a missing one (404 NAME_UNKNOWN); one they read but may not
 * change, 403 DENIED.
 */
export async function repositoryFor(s: Services, principal: Principal, name: string, action: Action): Promise<RepositoryFacts> {
  const facts = await s.hub.facts.facts(principal, name);
  if (!facts.exists || !decide(s.mode, principal, 'pull', facts, s.policy).allowed) throw nameUnknown(name);
  // Without accounts a repository is what the registry lists: one holding a manifest (as the catalog and tags/list).
  if (s.mode === 'open' && !(await listedByRegistry(s.store, name))) throw nameUnknown(name);
  if (action !== 'pull') {
    const d = decide(s.mode, principal, action, facts, s.policy);
    if (!d.allowed) throw denied(d.reason === 'token scope' ? 'the personal access token does not carry the scope this needs' : `this needs admin on ${name}`);
  }
  return facts;
}

/** Whether the registry lists the repository: it exists and holds a manifest. */
async function listedByRegistry(store: MetadataStore, name: string): Promise<boolean> {
  const id = await store.registry.repositoryId(name);
  return id !== null && (await store.registry.holdsManifest(id));
}

/** The repository of a `{name}` route, once repositoryFor lets the caller do `action` on it. */
export async function namedRepository(s: Services, input: HandlerInput<{ name?: string }, unknown, unknown>, action: Action): Promise<string> {
  const name = input.params.name!;
  await repositoryFor(s, input.principal, name, action);
  return name;
}

// ---- pagination ------------------------------------------------------------------------

export interface PageParams {
  n: number;
  last?: string;
}

/**
 * A page response: `{items, next}` and, when more follow, the registry's
 * `Link: <PATH?…&n=N&last=KEY>; rel="next"` (the request's other query
 * parameters kept). `items` holds up to n+1 entries: the extra one only
 * says that another page follows.
 */
export function pageResponse<T>(input: HandlerInput<unknown, unknown, unknown>, page: PageParams, items: T[], keyOf: (item: T) => string): ApiResponse {
  const more = items.length > page.n;
  const shown = more ? items.slice(0, page.n) : items;
  const next = more ? keyOf(shown[shown.length - 1]!) : null;
  const headers: Record<string, string> = {};
  if (next !== null) {
    const q = new URLSearchParams(input.rawQuery);
    q.set('n', String(page.n));
    q.set('last', next);
    headers.Link = `<${input.prefix}${input.path}?${q.toString()}>; rel="next"`;
  }
  return respond(200, { items: shown, next }, headers);
}

/** A page of an in-memory list (short lists: members, teams, tokens), sorted by `keyOf`. */
export function pageOf<T>(all: T[], page: PageParams, keyOf: (item: T) => string, compare: (a: string, b: string) => number = byteOrder): T[] {
  const sorted = [...all].sort((a, b) => compare(keyOf(a), keyOf(b)));
  const after = page.last === undefined ? sorted : sorted.filter((x) => compare(keyOf(x), page.last!) > 0);
  return after.slice(0, page.n + 1);
}

export const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
export const numericOrder = (a: string, b: string) => Number(a) - Number(b);

/** `last` of a list keyed by numeric id. */
export function numericLast(last: string | undefined): number | undefined {
  if (last === undefined) return undefined;
  if (!/^\d{1,15}$/.test(last)) throw new ApiError('INVALID', 'query.last: must be an id from the previous page');
  return Number(last);
}
