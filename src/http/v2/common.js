import { RegistryError } from '../../registry/index.js';
/** Parses `n` for tags/list and _catalog: a non-negative integer. */
export function pageSize(ctx) {
    const raw = ctx.query.get('n');
    if (raw === null || raw === '')
        return undefined;
    if (!/^\d{1,9}$/.test(raw)) {
        throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid number of results requested: n=${JSON.stringify(raw.slice(0, 50))}`, { n: raw.slice(0, 50) });
    }
    return Number(raw);
}
/** The Link header that points at the next page (OCI dist-spec content discovery). */
export function nextLink(ctx, path, n, last) {
    const q = new URLSearchParams();
    if (n !== undefined)
        q.set('n', String(n));
    q.set('last', last);
    return `<${ctx.urls.path(path)}?${q.toString()}>; rel="next"`;
}
export function contentLength(ctx) {
    const raw = ctx.req.headers['content-length'];
    if (raw === undefined)
        return undefined;
    const n = Number(raw);
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
/** The request body as an async iterable that counts bytes into ctx.bytesIn. */
export async function* body(ctx) {
    for await (const chunk of ctx.req) {
        ctx.bytesIn += chunk.byteLength;
        yield chunk;
    }
}
export function hasBody(ctx) {
    const len = contentLength(ctx);
    return (len !== undefined && len > 0) || (len === undefined && ctx.req.headers['transfer-encoding'] !== undefined);
}
