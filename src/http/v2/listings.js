import { sendJSON } from '../respond.js';
import { nextLink, pageSize } from './common.js';
export async function listTags(ctx, name) {
    const n = pageSize(ctx);
    const last = ctx.query.get('last') ?? undefined;
    const page = await ctx.registry.listTags(name, n, last);
    const headers = {};
    if (page.next !== undefined)
        headers.Link = nextLink(ctx, `v2/${name}/tags/list`, n, page.next);
    sendJSON(ctx.res, 200, { name, tags: page.items }, headers);
}
export async function catalog(ctx) {
    const n = pageSize(ctx);
    const last = ctx.query.get('last') ?? undefined;
    const page = await ctx.registry.catalog(n, last);
    const headers = {};
    if (page.next !== undefined)
        headers.Link = nextLink(ctx, 'v2/_catalog', n, page.next);
    sendJSON(ctx.res, 200, { repositories: page.items }, headers);
}
export async function referrers(ctx, name, digest) {
    const artifactType = ctx.query.get('artifactType') ?? undefined;
    const { index, filtered } = await ctx.registry.referrers(name, digest, artifactType);
    const headers = { 'Content-Type': 'application/vnd.oci.image.index.v1+json' };
    if (filtered)
        headers['OCI-Filters-Applied'] = 'artifactType';
    sendJSON(ctx.res, 200, index, headers);
}
