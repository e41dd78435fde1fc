/**
 * The one access decision at the edge, with accounts (`auth.accounts`) or an
 * external token server (`auth.token`): every route declares what it needs
 * (src/http/v2/index.ts, the API's routes), and this module decides it with
 * `decide` (src/access/policy.ts) before the handler runs.
 *
 * - The bearer of a token may do exactly what its access list says: no
 *   database work at all, so a request with a known token costs a cache
 *   lookup and this check.
 * - Anyone else (anonymous, or Basic credentials) is decided on the Hub's
 *   facts about the repository, cached until the database changes.
 *
 * Denials never tell a private repository from a missing one: the decision
 * for a missing repository is made on its namespace (src/hub/facts.ts), and
 * every denial of one kind has one status, one body and one challenge that
 * names only what the request asked for.
 * - no credentials: 401 UNAUTHORIZED with the Bearer challenge and the scope
 *   the route needs (clients then fetch a token for it);
 * - a token that lacks the scope, when its holder could get it (or when the
 *   holder is unknown, as with an external token server): 401 with
 *   `error="insufficient_scope"`;
 * - an authenticated caller without the permission: 403 DENIED.
 */
import { accessHolds, decide, decideCatalog, scopeAllows, type PolicyOptions } from '../access/policy.js';
import type { GrantedAccess, Principal, RepositoryFacts } from '../access/types.js';
// The module itself, not the token barrel: a start without token auth loads none of the rest.
import { bearerChallenge } from '../auth/token/challenge.js';
import { RegistryError, type RepositoryCondition } from '../registry/index.js';
import { readableCondition } from '../hub/index.js';
import type { AccessNeed, Ctx, RequestAccess } from './context.js';

export interface EdgeAccessOptions {
  /** `accounts`: the Hub decides; `token`: an external token server's access lists are all there is. */
  mode: 'accounts' | 'token';
  service: string;
  /** The configured realm, or undefined for Berth's own token endpoint (computed per request). */
  realm?: string;
  /** The facts about one repository for one principal (accounts). */
  facts?: (principal: Principal, repository: string) => Promise<RepositoryFacts>;
  policy: PolicyOptions;
}

const CATALOG_SCOPE: GrantedAccess[] = [{ type: 'registry', name: 'catalog', actions: ['*'] }];
const SEARCH_SCOPE: GrantedAccess[] = [{ type: 'registry', name: 'catalog', actions: ['search'] }];

/** Denials, each one shape whatever the repository: see the module comment. */
function denied(): RegistryError {
  return new RegistryError('DENIED');
}

export class EdgeAccess implements RequestAccess {
  constructor(private readonly opts: EdgeAccessOptions) {}

  get mode(): 'accounts' | 'token' {
    return this.opts.mode;
  }

  /** The realm clients fetch tokens from: configured, or `<scheme>://<host><prefix>token` of this request. */
  realm(ctx: Ctx): string {
    return this.opts.realm ?? ctx.urls.origin() + ctx.urls.path('token');
  }

  /** 401 with the Bearer challenge for what `needs` ask (no scope for the API root). */
  unauthorized(ctx: Ctx, needs: readonly AccessNeed[], error?: 'invalid_token' | 'insufficient_scope'): RegistryError {
    const challenge = bearerChallenge({ realm: this.realm(ctx), service: this.opts.service, scope: scopeOf(needs), error });
    return new RegistryError('UNAUTHORIZED', 'authentication required', null, { headers: { 'WWW-Authenticate': challenge } });
  }

  /** Throws the denial when the principal on `ctx` may not do what `needs` ask. */
  async authorize(ctx: Ctx, needs: readonly AccessNeed[]): Promise<void> {
    const { principal } = ctx;
    const repositories: Extract<AccessNeed, { kind: 'repository' }>[] = [];
    for (const need of needs) {
      switch (need.kind) {
        case 'base':
          // Even with public pulls allowed: clients (docker login) learn here where tokens come from.
          if (principal.kind === 'anonymous') throw this.unauthorized(ctx, []);
          break;
        case 'catalog':
          // A client with credentials learns here that it should use them (as distribution answers);
          // one without gets an anonymous token, which lists the public repositories.
          if (principal.kind === 'anonymous') throw this.unauthorized(ctx, needs);
          if (!decideCatalog('accounts', principal).allowed) {
            throw this.unauthorized(ctx, needs, 'insufficient_scope');
          }
          break;
        case 'search':
          // dockerd sends a token of scope registry:catalog:search after a token login (its stored refresh
          // token), Basic credentials after a plain one, nothing when logged out; podman and skopeo never send any.
          if (principal.kind === 'granted') {
            if (accessHolds(principal.access, 'registry', 'catalog', 'search')) break;
            throw this.unauthorized(ctx, needs, ctx.holder.kind === 'anonymous' ? undefined : 'insufficient_scope');
          }
          // An external token server's tokens are the only credentials; with accounts, anonymous callers
          // search what they may pull (public repositories), or are challenged when they may pull nothing.
          if (this.opts.mode === 'token' || (principal.kind === 'anonymous' && !this.opts.policy.anonymousPull)) throw this.unauthorized(ctx, needs);
          if (!decideCatalog('accounts', principal).allowed) throw denied();
          break;
        case 'admin':
          if (ctx.holder.kind === 'anonymous') throw this.unauthorized(ctx, []);
          // With an external token server, berth.admins names the administrators (the API checks).
          if (this.opts.mode === 'accounts' && !isAdministrator(ctx.holder)) throw denied();
          break;
        case 'repository':
          repositories.push(need);
          break;
      }
    }
    if (repositories.length === 0) return;
    if (principal.kind === 'granted') {
      if (repositories.every((n) => n.actions.every((a) => accessHolds(principal.access, 'repository', n.name, a)))) return;
      // The holder of a Berth token is known: told apart are "ask for a token with this scope" and "you may not".
      const holder = ctx.holder;
      if ((holder.kind === 'user' || holder.kind === 'robot') && !(await this.allows(holder, repositories))) throw denied();
      throw this.unauthorized(ctx, needs, holder.kind === 'anonymous' ? undefined : 'insufficient_scope');
    }
    if (this.opts.mode === 'token') throw this.unauthorized(ctx, needs);
    if (!(await this.allows(principal, repositories))) {
      throw principal.kind === 'anonymous' ? this.unauthorized(ctx, needs) : denied();
    }
  }

  private async allows(principal: Principal, needs: readonly Extract<AccessNeed, { kind: 'repository' }>[]): Promise<boolean> {
    for (const need of needs) {
      const facts = await this.facts(principal, need.name);
      for (const action of need.actions) if (!decide('accounts', principal, action, facts, this.opts.policy).allowed) return false;
    }
    return true;
  }

  private facts(principal: Principal, repository: string): Promise<RepositoryFacts> {
    if (!this.opts.facts) throw new Error('access facts are needed with accounts on');
    return this.opts.facts(principal, repository);
  }

  /** Whose rights a listing shows: the holder of a Berth token (the token's list names a few repositories, not what may be listed). */
  private lister(ctx: Ctx): Principal {
    return ctx.principal.kind === 'granted' && this.opts.mode === 'accounts' ? ctx.holder : ctx.principal;
  }

  catalogFilter(ctx: Ctx): RepositoryCondition | undefined {
    // An external token with registry:catalog:* lists everything, as distribution does.
    if (this.opts.mode === 'token') return undefined;
    const who = this.lister(ctx);
    if (who.kind === 'user' && who.admin) return undefined;
    return readableCondition('accounts', who, this.opts.policy, { name: 'r.name', visibility: 'r.visibility' });
  }

  async mayRead(ctx: Ctx, repository: string): Promise<boolean> {
    const who = this.lister(ctx);
    if (who.kind === 'granted') return accessHolds(who.access, 'repository', repository, 'pull');
    if (this.opts.mode === 'token') return false;
    return decide('accounts', who, 'pull', await this.facts(who, repository), this.opts.policy).allowed;
  }
}

/** An administrator, signed in with a password, or with a token whose scopes reach as far as delete. */
export function isAdministrator(p: Principal): boolean {
  return p.kind === 'user' && p.admin && (!p.token || scopeAllows(p.token.scopes, 'delete'));
}

/** The challenge's scope: every repository need with its actions; the catalog as `registry:catalog:*`. */
function scopeOf(needs: readonly AccessNeed[]): GrantedAccess[] {
  const out: GrantedAccess[] = [];
  for (const n of needs) {
    if (n.kind === 'repository') out.push({ type: 'repository', name: n.name, actions: n.actions });
    else if (n.kind === 'catalog') out.push(...CATALOG_SCOPE);
    else if (n.kind === 'search') out.push(...SEARCH_SCOPE);
  }
  return out;
}

/**
 * The Hub's facts, cached like the registry's hottest reads: until anything
 * in the database changes (SQLite's data_version, or a write of this
 * process; PostgreSQL reads are not cached). Robots are not cached: their
 * expiry is a time, not a change.
 */
export function cachedFacts(
  store: { cachedRead<T>(key: string, load: () => Promise<T>): Promise<T> },
  loader: { facts(principal: Principal, repository: string): Promise<RepositoryFacts> },
): (principal: Principal, repository: string) => Promise<RepositoryFacts> {
  return (principal, repository) => {
    if (principal.kind === 'anonymous') return store.cachedRead(`facts - ${repository}`, () => loader.facts(principal, repository));
    if (principal.kind === 'user') return store.cachedRead(`facts u${principal.id}:${principal.name} ${repository}`, () => loader.facts(principal, repository));
    return loader.facts(principal, repository);
  };
}
