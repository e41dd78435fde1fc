/**
 * The two v1 endpoints `docker search HOST/TERM` calls, as moby's registry
 * search client does (daemon/pkg/registry, registry/session.go in 20.10):
 *
 * - `GET /v1/_ping`, without credentials: any answer will do, and
 *   `X-Docker-Registry-Standalone: true` says this is a registry of its own
 *   (not an index delegating to Docker Hub), so over HTTPS the daemon then
 *   sends its Basic credentials with the search.
 * - `GET /v1/search?q=TERM&n=LIMIT` (`page` too, as Docker Hub takes it):
 *   Docker Hub's answer (num_results, num_pages, page, page_size, query,
 *   results[] of name, description, star_count, is_official,
 *   is_automated), from discovery's search, only what the caller may read.
 *
 * Who the caller is: after a plain `docker login` dockerd sends Basic
 * credentials; after a token login (Berth's accounts: `docker login` keeps a
 * refresh token) a Bearer token of scope `registry:catalog:search` obtained
 * with that refresh token; logged out nothing (or, over HTTPS, an empty
 * Basic pair). podman and skopeo's library send no credentials to
 * /v1/search and fall back to `/v2/_catalog` on anything but 200. The edge
 * has decided the `search` need before the handler runs (authorize.ts); the
 * handler searches with the rights of the token's holder.
 */
import type { Principal } from '../../access/types.js';
import type { DockerSearchResponse } from '../../hub/search.js';
import { RegistryError } from '../../registry/index.js';
import type { AccessNeed, Ctx } from '../context.js';
import { sendJSON } from '../respond.js';
import type { Match } from '../v2/index.js';

export interface DockerSearch {
  dockerSearch(principal: Principal, params: { q: string; n?: number; page?: number }, libraryAlias: boolean): Promise<DockerSearchResponse>;
}

export interface V1Options {
  search: DockerSearch;
  /**
   * Accounts on: results are what the caller (a token's holder) may read,
   * and `library/NAME` is answered as `NAME`. Off (anonymous, htpasswd or
   * an external token server): every repository, as `_catalog` lists them.
   */
  accounts: boolean;
}

const ANONYMOUS: Principal = { kind: 'anonymous' };
const SEARCH_NEEDS: AccessNeed[] = [{ kind: 'search' }];
const PING_BODY = Buffer.from(JSON.stringify({ standalone: true }));
/** As Docker Hub: pages past this are refused rather than counted through. */
const MAX_PAGE = 10_000;

function refuse(route: string, allowed: string[]): Match {
  return {
    route,
    public: true,
    run: async () => {
      throw new RegistryError('UNSUPPORTED', `method not allowed; this endpoint supports ${allowed.join(', ')}`, undefined, { headers: { Allow: allowed.join(', ') } });
    },
  };
}

/** A positive integer query parameter, or undefined when absent; anything else is the spec's 400. */
function positive(ctx: Ctx, name: string, max: number): number | undefined {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return undefined;
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= max)) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', `${name} must be a whole number from 1 to ${max}`, { [name]: raw.slice(0, 20) });
  }
  return n;
}

export function v1Routes(opts: V1Options): (method: string, path: string) => Match | null {
  const ping: Match = {
    route: 'ping',
    public: true,
    run: async (ctx) => {
      const head = ctx.req.method === 'HEAD';
      ctx.res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': PING_BODY.byteLength, 'X-Docker-Registry-Standalone': 'true' });
      ctx.res.end(head ? undefined : PING_BODY);
    },
  };
  const search: Match = {
    route: 'search',
    needs: () => SEARCH_NEEDS,
    run: async (ctx) => {
      // dockerd's limit is 1 to 100; a larger n is answered with 100, as the page size is bounded.
      const n = positive(ctx, 'n', 1_000_000);
      const page = positive(ctx, 'page', MAX_PAGE);
      const principal = opts.accounts ? (ctx.principal.kind === 'granted' ? ctx.holder : ctx.principal) : ANONYMOUS;
      const answer = await opts.search.dockerSearch(principal, { q: ctx.query.get('q') ?? '', n, page }, opts.accounts);
      sendJSON(ctx.res, 200, answer);
    },
  };
  return (method, path) => {
    if (path === 'v1/_ping' || path === 'v1/_ping/') return method === 'GET' || method === 'HEAD' ? ping : refuse('ping', ['GET', 'HEAD']);
    if (path === 'v1/search' || path === 'v1/search/') return method === 'GET' ? search : refuse('search', ['GET']);
    return null;
  };
}
