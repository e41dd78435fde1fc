/**
 * Repository search: full text over name, namespace, description and README,
 * ranked by how the query matches (exact name, name prefix, words of the
 * name, a name like it (typo), description, README), then stars, then recent
 * pulls. Only what the caller may read, filtered inside the query (the same
 * condition as every listing), so pages are full and counts true.
 * Also `docker search`'s shape (GET /v1/search).
 */
import type { AccessMode, PolicyOptions } from '../access/policy.js';
import type { Principal } from '../access/types.js';
import { DiscoveryQueries, type RepositorySummary, type SearchSort, type SearchSpec } from '../metadata/discovery.js';
import type { HubContext } from './context.js';
import { HubError } from './errors.js';
import { readableCondition } from './listing.js';

/** Words of a query kept at most (a longer query is cut: each word is one more index lookup). */
const MAX_TERMS = 8;
const MAX_QUERY = 200;
export const MAX_PAGE_SIZE = 100;
/** A search whose words match fewer repositories than this also looks for names like the query (typos). */
export const FUZZY_WHEN_FEWER = 10;

export interface SearchRequest {
  query: string;
  namespace?: string;
  official?: boolean;
  minStars?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  sort?: SearchSort;
  /** 1-based. */
  page?: number;
  pageSize?: number;
}

export interface SearchPage {
  query: string;
  page: number;
  pageSize: number;
  total: number;
  pages: number;
  results: RepositorySummary[];
}

/** Docker Hub's /v1/search answer, as dockerd, podman and skopeo read it. */
export interface DockerSearchResponse {
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  query: string;
  results: { name: string; description: string; star_count: number; is_official: boolean; is_automated: false }[];
}

/** The query's words: letters and digits, lower-cased (every other character separates words, as the index does). */
export function queryTerms(query: string): string[] {
  const words = query.toLowerCase().slice(0, MAX_QUERY).match(/[\p{L}\p{N}]+/gu) ?? [];
  return [...new Set(words)].slice(0, MAX_TERMS);
}

/** pg_trgm's trigrams of each word, padded with two spaces before and one after. */
export function queryTrigrams(terms: string[]): string[] {
  const out = new Set<string>();
  for (const t of terms) {
    const padded = `  ${t} `;
    for (let i = 0; i + 3 <= padded.length; i++) out.add(padded.slice(i, i + 3));
  }
  return [...out];
}

export class SearchService {
  private readonly queries: DiscoveryQueries;
  constructor(
    private readonly hub: HubContext,
    private readonly mode: AccessMode,
    private readonly policy: PolicyOptions,
  ) {
    this.queries = new DiscoveryQueries(hub.store);
  }

  async search(principal: Principal, req: SearchRequest): Promise<SearchPage> {
    const pageSize = Math.min(Math.max(Math.floor(req.pageSize ?? 25), 1), MAX_PAGE_SIZE);
    const page = Math.max(Math.floor(req.page ?? 1), 1);
    if (page > 10_000) throw new HubError('INVALID', 'page must be at most 10000');
    const sort = req.sort ?? 'relevance';
    if (!['relevance', 'stars', 'pulls', 'updated'].includes(sort)) throw new HubError('INVALID', `sort must be relevance, stars, pulls or updated, got ${JSON.stringify(sort)}`);
    const terms = queryTerms(req.query);
    // Compared with names: what cannot be in a name goes, spaces between words become '-' ("web server" is exactly web-server).
    const text = req.query
      .toLowerCase()
      .slice(0, MAX_QUERY)
      .replace(/[^a-z0-9._/\s-]/g, '')
      .trim()
      .replace(/\s+/g, '-');
    const spec: SearchSpec = {
      terms,
      text,
      trigrams: queryTrigrams(terms),
      readable: readableCondition(this.mode, principal, this.policy, { name: 'r.name', visibility: 'r.visibility', at: await this.hub.store.clock() }),
      namespace: req.namespace,
      official: req.official,
      minStars: req.minStars,
      platform: req.platform,
      sort,
      limit: pageSize,
      offset: (page - 1) * pageSize,
    };
    let { total, best, results } = await this.queries.search(spec);
    // Typo tolerance where it helps: names like the query are looked for when the words themselves find few
    // and no name is the query or starts with it (then the query is no typo).
    if (terms.length > 0 && total < FUZZY_WHEN_FEWER && best < 5) ({ total, results } = await this.queries.search({ ...spec, fuzzy: true }));
    return { query: req.query, page, pageSize, total, pages: Math.ceil(total / pageSize), results };
  }

  /**
   * `docker search` (GET /v1/search?q=&n=&page=): Docker Hub's fields.
   * `n` is the page size (dockerd sends --limit, 25 by default; 1 to 100);
   * the stars and official filters are the daemon's (`--filter stars=N`,
   * `is-official=true`), applied here inside the query rather than after a
   * page was cut. `is_automated` is always false (automated builds are
   * Docker Hub's). With `libraryAlias` (accounts on), `library/NAME` is
   * answered as `NAME`, the alias users pull by.
   */
  async dockerSearch(
    principal: Principal,
    params: { q: string; n?: number; page?: number; minStars?: number; official?: boolean; automated?: boolean },
    libraryAlias: boolean,
  ): Promise<DockerSearchResponse> {
    const pageSize = Math.min(Math.max(Math.floor(params.n ?? 25), 1), MAX_PAGE_SIZE);
    const page = Math.max(Math.floor(params.page ?? 1), 1);
    if (params.automated === true) return { num_results: 0, num_pages: 0, page, page_size: pageSize, query: params.q, results: [] };
    const found = await this.search(principal, { query: params.q, page, pageSize, minStars: params.minStars, official: params.official });
    return {
      num_results: found.total,
      num_pages: found.pages,
      page,
      page_size: pageSize,
      query: params.q,
      results: found.results.map((r) => ({
        name: libraryAlias && r.namespace === 'library' ? r.shortName : r.name,
        description: r.description,
        star_count: r.starCount,
        is_official: r.official,
        is_automated: false,
      })),
    };
  }
}
