/**
 * The Hub's discovery in the JSON API (issue 16): search, repository pages
 * in Docker Hub's shapes (the repository and its tags), description,
 * README and official flag, stars, follows and the feed, activity, and
 * repository webhooks. Served when createHubApi is given a Discovery.
 *
 * Every operation on a repository asks the one decision first
 * (repositoryFor): a repository the caller may not read is 404
 * NAME_UNKNOWN, exactly as a missing one; the domain decides again.
 *
 * Lists page with `?n=&last=` like the rest of the API. Keys are ids
 * (activity), `MS:NAME` (stars, newest first), `KIND:TARGET` (follows),
 * ids (webhooks); ranked lists (search, tags) have no stable key, so
 * theirs is the position of the next entry (an entry added between two
 * requests can shift a page by one).
 */
import { redactUrl } from '../../../events/redact.js';
import type { Discovery } from '../../../hub/index.js';
import {
  noContent,
  numericLast,
  numericOrder,
  namedRepository,
  operation,
  pageOf,
  pageResponse,
  repositoryFor,
  requireAdmin,
  requireUser,
  respond,
  type Services,
} from './common.js';
import { ApiError, notFound } from './errors.js';
import { parseStarKey, stargazers, starKey, starredRepositories, type StarKey } from './queries.js';
import { describeRepository, repositoryOperations } from './repositories.js';
import * as S from './schemas.js';
import type { ApiResponse, HandlerInput, Operation } from './types.js';

const repo = { name: 'repository' } as const;

function discoveryOf(s: Services): Discovery {
  // createHubApi routes these operations only when it was given a Discovery.
  if (!s.discovery) throw new Error('discovery operation without a Discovery');
  return s.discovery;
}

// ---- paging --------------------------------------------------------------------------

/** `Link: <…?n=N&last=KEY>; rel="next"` with the request's other parameters kept. */
function linkTo(input: HandlerInput<unknown, unknown, unknown>, n: number, next: string | null): Record<string, string> {
  if (next === null) return {};
  const q = new URLSearchParams(input.rawQuery);
  q.set('n', String(n));
  q.set('last', next);
  return { Link: `<${input.prefix}${input.path}?${q.toString()}>; rel="next"` };
}

/** The domain's last page number (search refuses pages past it). */
const MAX_DOMAIN_PAGE = 10_000;

/**
 * A page of a ranked list the domain pages by number (1-based, n a page):
 * `last` is the position of the entry to start at. A position that is no
 * multiple of n (a client that changed n) takes the two domain pages it
 * straddles.
 */
async function positional<T>(
  page: { n: number; last?: string },
  fetch: (pageNumber: number, pageSize: number) => Promise<{ total: number; items: T[] }>,
): Promise<{ total: number; items: T[]; next: string | null }> {
  let offset = 0;
  if (page.last !== undefined) {
    if (!/^\d{1,9}$/.test(page.last)) throw new ApiError('INVALID', 'query.last: must be the `next` of the previous page (a position)');
    offset = Number(page.last);
  }
  const first = Math.floor(offset / page.n) + 1;
  const skip = offset - (first - 1) * page.n;
  if (first + (skip > 0 ? 1 : 0) > MAX_DOMAIN_PAGE) throw new ApiError('INVALID', `query.last: at most ${MAX_DOMAIN_PAGE} pages of n entries`);
  let { total, items } = await fetch(first, page.n);
  if (skip > 0) {
    const more = await fetch(first + 1, page.n);
    items = [...items.slice(skip), ...more.items].slice(0, page.n);
    total = more.total;
  }
  const end = offset + items.length;
  return { total, items, next: items.length > 0 && end < total ? String(end) : null };
}

function starAfter(last: string | undefined): StarKey | undefined {
  const key = parseStarKey(last);
  if (last !== undefined && !key) throw new ApiError('INVALID', 'query.last: must be the `next` of the previous page (MS:NAME)');
  return key;
}

// ---- webhooks: what an answer shows of a URL ---------------------------------------------

/**
 * A webhook URL as answers show it: a password in its user part and the
 * values of its query parameters (where services put their tokens) become
 * `***`. The URL is stored and called as given; only an admin reads even
 * the redacted form.
 */
export function redactWebhookUrl(raw: string): string {
  return redactUrl(raw, { mask: '***', keepUser: true, invalid: '***' });
}

const webhookView = (w: { id: number; name: string; url: string; events: string[]; active: boolean; createdBy: string | null; createdAt: number }) => ({
  id: w.id,
  name: w.name,
  url: redactWebhookUrl(w.url),
  events: w.events,
  active: w.active,
  createdBy: w.createdBy,
  createdAt: w.createdAt,
});

// ---- the repository, extended with its page ----------------------------------------------

async function repositoryPage(s: Services, input: HandlerInput<unknown, unknown, unknown>, name: string) {
  const described = await describeRepository(s, input, name);
  const { name: _short, ...page } = await discoveryOf(s).pages.repository(input.principal, name);
  return { ...described, ...page };
}

const baseRepositoryOperation = (id: string): Operation<Services> => {
  const op = repositoryOperations.find((o) => o.id === id);
  if (!op) throw new Error(`no operation ${id}`);
  return op;
};

/** getRepository and updateRepository answering the page's fields too (the existing ones unchanged). */
export const DISCOVERY_REPLACEMENTS: readonly Operation<Services>[] = [
  {
    ...baseRepositoryOperation('getRepository'),
    summary: "A repository: owner, visibility, tag count, size, the caller's permission, and its page (Docker Hub's fields: description, README, stars, pulls, dates)",
    response: { status: 200, description: 'the repository', schema: S.RepositoryPageSchema },
    handler: async (s, input) => respond(200, await repositoryPage(s, input, input.params.name!)),
  },
  {
    ...baseRepositoryOperation('updateRepository'),
    response: { status: 200, description: 'the repository', schema: S.RepositoryPageSchema },
    handler: async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      await s.hub.repositories.setVisibility(name, (input.body as { visibility: 'public' | 'private' }).visibility, input.actor);
      return respond(200, await repositoryPage(s, input, name));
    },
  },
];

// ---- the operations ------------------------------------------------------------------------

const star = (starred: boolean) =>
  operation(
    {
      id: starred ? 'starRepository' : 'unstarRepository',
      method: starred ? 'PUT' : 'DELETE',
      path: '/berth/v1/repositories/{name}/-/star',
      summary: starred ? 'Star a repository (the caller; starring twice counts once)' : 'Take back the caller\'s star',
      tag: 'stars',
      auth: 'required',
      params: repo,
      response: { status: 204, description: starred ? 'starred' : 'not starred' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireUser(input);
      const name = await namedRepository(s, input, 'pull');
      await discoveryOf(s).stars.setStar(input.principal, name, starred, input.actor);
      return noContent();
    },
  );

const follow = (target: 'namespace' | 'repository', following: boolean) =>
  operation(
    {
      id: `${following ? 'follow' : 'unfollow'}${target === 'namespace' ? 'Namespace' : 'Repository'}`,
      method: following ? 'PUT' : 'DELETE',
      path: target === 'namespace' ? '/berth/v1/namespaces/{namespace}/follow' : '/berth/v1/repositories/{name}/-/follow',
      summary:
        target === 'namespace'
          ? following
            ? 'Follow a user, an organization or library: what happens in its namespace and what the user does is in your feed'
            : 'Stop following a namespace'
          : following
            ? 'Follow a repository: what happens in it is in your feed'
            : 'Stop following a repository',
      tag: 'follows',
      auth: 'required',
      params: target === 'namespace' ? { namespace: 'namespace' } : repo,
      response: { status: 204, description: following ? 'followed' : 'not followed' },
      errors: [403, 404],
    },
    async (s, input) => {
      requireUser(input);
      const d = discoveryOf(s);
      if (target === 'namespace') {
        await d.stars.setFollow(input.principal, { account: input.params.namespace! }, following);
      } else {
        const name = input.params.name!;
        // Following needs reading; one may always stop following (even what one can no longer read).
        if (following) await repositoryFor(s, input.principal, name, 'pull');
        await d.stars.setFollow(input.principal, { repository: name }, following);
      }
      return noContent();
    },
  );

async function activityPage(s: Services, input: HandlerInput<unknown, S.DiscoveryPage, unknown>, scope: { repository: string } | { namespace: string } | 'feed'): Promise<ApiResponse> {
  const q = input.query;
  const { entries } = await discoveryOf(s).activity.read(input.principal, scope, { before: numericLast(q.last), limit: q.n + 1 });
  return pageResponse(input, q, entries, (e) => String(e.id));
}

export const DISCOVERY_OPERATIONS: readonly Operation<Services>[] = [
  // ---- search ------------------------------------------------------------------------------
  operation(
    {
      id: 'searchRepositories',
      method: 'GET',
      path: '/berth/v1/search',
      summary: 'Search the repositories the caller may read: names, namespaces, descriptions and READMEs, ranked',
      description:
        'Relevance: the query is the name, a name starts with it, its words are words of the name, a name like it (a typo), the description, then the README; within each, more stars, then more recent pulls. `last` is the `next` of the previous page (a position). A private repository never shows, not even in `count`.',
      tag: 'search',
      auth: 'optional',
      query: S.SearchQuery,
      response: { status: 200, description: 'a page of matches, best first', schema: S.SearchListSchema },
      errors: [],
      paginated: true,
    },
    async (s, input) => {
      const q = input.query;
      const platform = q.os !== undefined || q.architecture !== undefined || q.variant !== undefined ? { os: q.os, architecture: q.architecture, variant: q.variant } : undefined;
      const found = await positional(q, async (page, pageSize) => {
        const r = await discoveryOf(s).search.search(input.principal, {
          query: q.q,
          namespace: q.namespace,
          official: q.official,
          minStars: q.min_stars,
          platform,
          sort: q.sort,
          page,
          pageSize,
        });
        return { total: r.total, items: r.results };
      });
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      const items = found.items.map((r) => ({
        name: r.name,
        namespace: r.namespace,
        short_name: r.shortName,
        description: r.description,
        star_count: r.starCount,
        pull_count: r.pullCount,
        is_official: r.official,
        last_updated: iso(r.lastPushedAt),
        last_pulled: iso(r.lastPulledAt),
        platforms: r.platforms,
      }));
      return respond(200, { query: q.q, count: found.total, items, next: found.next }, linkTo(input, q.n, found.next));
    },
  ),

  // ---- a repository's page ---------------------------------------------------------------------
  operation(
    {
      id: 'listRepositoryTags',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/tags',
      summary: "A repository's tags in Docker Hub's shape: digest, media type, size, platforms, last pushed and pulled",
      description: '`last` is the `next` of the previous page (a position in the chosen order).',
      tag: 'repositories',
      auth: 'optional',
      params: repo,
      query: S.TagListQuery,
      response: { status: 200, description: 'a page of tags', schema: S.TagListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'pull');
      const q = input.query;
      const found = await positional(q, async (page, pageSize) => {
        const r = await discoveryOf(s).pages.tags(input.principal, name, { sort: q.sort, page, pageSize, filter: q.filter });
        return { total: r.count, items: r.results };
      });
      return respond(200, { count: found.total, items: found.items, next: found.next }, linkTo(input, q.n, found.next));
    },
  ),
  operation(
    {
      id: 'setRepositoryDescription',
      method: 'PUT',
      path: '/berth/v1/repositories/{name}/-/description',
      summary: "Set a repository's short description (admin on the repository)",
      description: "An empty one clears it: the image's own (the org.opencontainers.image.description annotation or label) shows again.",
      tag: 'repositories',
      auth: 'required',
      params: repo,
      body: S.DescriptionBody,
      response: { status: 204, description: 'set' },
      errors: [403, 404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      await discoveryOf(s).pages.setDescription(input.principal, name, input.body.description, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'setRepositoryReadme',
      method: 'PUT',
      path: '/berth/v1/repositories/{name}/-/readme',
      summary: "Set a repository's README, Markdown (admin on the repository)",
      description: 'The body may be up to 2 MiB (the README itself at most 1 MiB). An empty README clears it: one attached to the image shows again.',
      tag: 'repositories',
      auth: 'required',
      params: repo,
      body: S.ReadmeBody,
      response: { status: 204, description: 'set' },
      errors: [403, 404],
      maxBodyBytes: S.README_BODY_BYTES,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      await discoveryOf(s).pages.setReadme(input.principal, name, input.body.readme, input.actor);
      return noContent();
    },
  ),
  operation(
    {
      id: 'setRepositoryOfficial',
      method: 'PUT',
      path: '/berth/v1/repositories/{name}/-/official',
      summary: 'Mark a repository official, or not (administrators)',
      description: 'library/ repositories are official from their first push.',
      tag: 'repositories',
      auth: 'required',
      params: repo,
      body: S.OfficialBody,
      response: { status: 204, description: 'set' },
      errors: [403, 404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'pull');
      requireAdmin(input);
      await discoveryOf(s).pages.setOfficial(input.principal, name, input.body.official, input.actor);
      return noContent();
    },
  ),

  // ---- stars --------------------------------------------------------------------------------
  star(true),
  star(false),
  operation(
    {
      id: 'listStargazers',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/stargazers',
      summary: 'Who starred a repository, newest first',
      tag: 'stars',
      auth: 'optional',
      params: repo,
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of users; `last` is the previous `next` (MS:NAME)', schema: S.StarListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'pull');
      const q = input.query;
      const items = await stargazers(s.store, name, { after: starAfter(q.last), limit: q.n + 1 });
      return pageResponse(input, q, items, starKey);
    },
  ),
  operation(
    {
      id: 'listStarred',
      method: 'GET',
      path: '/berth/v1/accounts/{name}/starred',
      summary: 'What a user starred, newest first: the repositories the caller may read',
      tag: 'stars',
      auth: 'optional',
      params: { name: 'account' },
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of repositories; `last` is the previous `next` (MS:NAME)', schema: S.StarListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      const q = input.query;
      const account = await s.hub.accounts.get(input.params.name!);
      if (!account || account.kind !== 'user') throw notFound(`user ${input.params.name!}`);
      const items = await starredRepositories(s.store, input.principal, s.policy, account.id, { after: starAfter(q.last), limit: q.n + 1 });
      return pageResponse(input, q, items, starKey);
    },
  ),

  // ---- follows and the feed --------------------------------------------------------------------
  follow('namespace', true),
  follow('namespace', false),
  follow('repository', true),
  follow('repository', false),
  operation(
    {
      id: 'listFollowing',
      method: 'GET',
      path: '/berth/v1/me/following',
      summary: 'What the caller follows: namespaces and repositories',
      tag: 'follows',
      auth: 'required',
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page, by kind then name; `last` is KIND:TARGET', schema: S.FollowListSchema },
      errors: [403],
      paginated: true,
    },
    async (s, input) => {
      requireUser(input);
      const all = await discoveryOf(s).stars.following(input.principal);
      const key = (f: { kind: string; target: string }) => `${f.kind}:${f.target}`;
      return pageResponse(input, input.query, pageOf(all, input.query, key), key);
    },
  ),
  operation(
    {
      id: 'getFeed',
      method: 'GET',
      path: '/berth/v1/me/feed',
      summary: 'Activity of what the caller follows, newest first',
      description: 'Entries about repositories the caller may not read (now) are left out.',
      tag: 'follows',
      auth: 'required',
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of entries; `last` is an entry id', schema: S.ActivityListSchema },
      errors: [403],
      paginated: true,
    },
    async (s, input) => {
      requireUser(input);
      return activityPage(s, input, 'feed');
    },
  ),

  // ---- activity --------------------------------------------------------------------------------
  operation(
    {
      id: 'listRepositoryActivity',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/activity',
      summary: 'What happened in a repository, newest first: pushes, tags, deletes, visibility and permission changes, stars, description and README',
      tag: 'activity',
      auth: 'optional',
      params: repo,
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of entries; `last` is an entry id', schema: S.ActivityListSchema },
      errors: [404],
      paginated: true,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'pull');
      return activityPage(s, input, { repository: name });
    },
  ),
  operation(
    {
      id: 'listNamespaceActivity',
      method: 'GET',
      path: '/berth/v1/namespaces/{namespace}/activity',
      summary: 'What happened in a namespace, newest first',
      description: 'Entries about repositories the caller may not read are left out (a namespace with none readable answers an empty list).',
      tag: 'activity',
      auth: 'optional',
      params: { namespace: 'namespace' },
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of entries; `last` is an entry id', schema: S.ActivityListSchema },
      errors: [],
      paginated: true,
    },
    async (s, input) => activityPage(s, input, { namespace: input.params.namespace! }),
  ),

  // ---- repository webhooks -----------------------------------------------------------------------
  operation(
    {
      id: 'listWebhooks',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/webhooks',
      summary: "A repository's webhooks (admin on the repository)",
      description: 'URLs are shown with the password of their user part and the values of their query parameters as ***.',
      tag: 'webhooks',
      auth: 'required',
      params: repo,
      query: S.DiscoveryPageQuery,
      response: { status: 200, description: 'a page of webhooks, by id', schema: S.WebhookListSchema },
      errors: [403, 404],
      paginated: true,
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const hooks = (await discoveryOf(s).webhooks.list(input.principal, name)).map(webhookView);
      return pageResponse(input, input.query, pageOf(hooks, input.query, (h) => String(h.id), numericOrder), (h) => String(h.id));
    },
  ),
  operation(
    {
      id: 'createWebhook',
      method: 'POST',
      path: '/berth/v1/repositories/{name}/-/webhooks',
      summary: 'Create a webhook: each push with a tag is POSTed to it in Docker Hub\'s payload (admin on the repository; at most 20 per repository)',
      tag: 'webhooks',
      auth: 'required',
      params: repo,
      body: S.WebhookBody,
      response: { status: 201, description: 'created', schema: S.WebhookSchema },
      errors: [403, 404, 409],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const row = await discoveryOf(s).webhooks.create(input.principal, name, input.body, input.actor);
      return respond(201, webhookView(row));
    },
  ),
  operation(
    {
      id: 'updateWebhook',
      method: 'PATCH',
      path: '/berth/v1/repositories/{name}/-/webhooks/{id}',
      summary: "Change a webhook's URL, events or whether it is active (admin on the repository)",
      tag: 'webhooks',
      auth: 'required',
      params: { ...repo, id: 'id' },
      body: S.WebhookPatchBody,
      response: { status: 200, description: 'the webhook', schema: S.WebhookSchema },
      errors: [403, 404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const id = Number(input.params.id!);
      const d = discoveryOf(s);
      await d.webhooks.update(input.principal, name, id, input.body, input.actor);
      const row = (await d.webhooks.list(input.principal, name)).find((h) => h.id === id);
      if (!row) throw notFound(`webhook ${id} in ${name}`);
      return respond(200, webhookView(row));
    },
  ),
  operation(
    {
      id: 'deleteWebhook',
      method: 'DELETE',
      path: '/berth/v1/repositories/{name}/-/webhooks/{id}',
      summary: 'Delete a webhook and its undelivered events (admin on the repository)',
      tag: 'webhooks',
      auth: 'required',
      params: { ...repo, id: 'id' },
      response: { status: 204, description: 'deleted' },
      errors: [403, 404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      await discoveryOf(s).webhooks.delete(input.principal, name, Number(input.params.id!), input.actor);
      return noContent();
    },
  ),
];
