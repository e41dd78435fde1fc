/** Tags list, catalog and referrers (OCI dist-spec end-8a/8b, end-12a/12b; distribution's _catalog). */
import { RegistryError } from '../../registry/index.js';
import type { Ctx } from '../context.js';
import { sendJSON } from '../respond.js';
import { nextLink, pageSize } from './common.js';

export async function listTags(ctx: Ctx, name: string): Promise<void> {
  const n = pageSize(ctx);
  const last = ctx.query.get('last') ?? undefined;
  const page = await ctx.registry.listTags(name, n, last);
  const headers: Record<string, string> = {};
  if (page.next !== undefined) headers.Link = nextLink(ctx, `v2/${name}/tags/list`, n, page.next);
  sendJSON(ctx.res, 200, { name, tags: page.items }, headers);
}

export async function catalog(ctx: Ctx): Promise<void> {
  const n = pageSize(ctx);
  const last = ctx.query.get('last') ?? undefined;
  // Only what the caller may read, filtered inside the query so that `n` and `last` stay right.
  const page = await ctx.registry.catalog(n, last, undefined, ctx.access.catalogFilter(ctx));
  const headers: Record<string, string> = {};
  if (page.next !== undefined) headers.Link = nextLink(ctx, 'v2/_catalog', n, page.next);
  sendJSON(ctx.res, 200, { repositories: page.items }, headers);
}

export async function referrers(ctx: Ctx, name: string, digest: string): Promise<void> {
  // Form decoding reads a bare `+` as a space. A media type never holds a
  // space, so a space here is a `+` the client did not percent-encode
  // (`application/vnd.example+json`).
  const artifactType = ctx.query.get('artifactType')?.replaceAll(' ', '+');
  const n = pageSize(ctx);
  // `last` is the cursor Berth put in the previous page's Link: opaque to clients.
  const rawLast = ctx.query.get('last');
  if (rawLast !== null && !/^[1-9]\d{0,14}$/.test(rawLast)) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid referrers page cursor: last=${JSON.stringify(rawLast.slice(0, 50))}`, { last: rawLast.slice(0, 50) });
  }
  const { index, filtered, next } = await ctx.registry.referrers(name, digest, artifactType, n, rawLast === null ? undefined : Number(rawLast));
  const headers: Record<string, string> = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
  if (filtered) headers['OCI-Filters-Applied'] = 'artifactType';
  // OCI dist-spec "Listing Referrers": a registry MAY paginate, with a Link header to the next page (RFC 5988).
  if (next !== undefined) {
    const q = new URLSearchParams();
    if (n !== undefined) q.set('n', String(n));
    if (artifactType !== undefined) q.set('artifactType', artifactType);
    q.set('last', String(next));
    headers.Link = `<${ctx.urls.path(`v2/${name}/referrers/${digest}`)}?${q.toString()}>; rel="next"`;
  }
  sendJSON(ctx.res, 200, index, headers);
}
