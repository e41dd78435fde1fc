/** Tags list, catalog and referrers (OCI dist-spec end-8a/8b, end-12a/12b; distribution's _catalog). */
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
  const page = await ctx.registry.catalog(n, last);
  const headers: Record<string, string> = {};
  if (page.next !== undefined) headers.Link = nextLink(ctx, 'v2/_catalog', n, page.next);
  sendJSON(ctx.res, 200, { repositories: page.items }, headers);
}

export async function referrers(ctx: Ctx, name: string, digest: string): Promise<void> {
  // Form decoding reads a bare `+` as a space. A media type never holds a
  // space, so a space here is a `+` the client did not percent-encode
  // (`application/vnd.example+json`).
  const artifactType = ctx.query.get('artifactType')?.replaceAll(' ', '+');
  const { index, filtered } = await ctx.registry.referrers(name, digest, artifactType);
  const headers: Record<string, string> = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
  if (filtered) headers['OCI-Filters-Applied'] = 'artifactType';
  sendJSON(ctx.res, 200, index, headers);
}
