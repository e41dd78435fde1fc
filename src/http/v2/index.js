/**
 * Routing for the /v2/ API. Repository names contain slashes, so routes are
 * matched from the end of the path (as distribution's router does) and the
 * name is validated before anything else sees it.
 */
import { RegistryError, assertName } from '../../registry/index.js';
import { apiBase } from './base.js';
import { deleteBlob, getBlob } from './blobs.js';
import { catalog, listTags, referrers } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';
const routes = [
    { name: 'catalog', pattern: /^v2\/_catalog$/, methods: { GET: (ctx) => catalog(ctx) } },
    { name: 'tags', pattern: /^v2\/(.+)\/tags\/list$/, methods: { GET: (ctx, n) => listTags(ctx, n) } },
    {
        name: 'manifest',
        pattern: /^v2\/(.+)\/manifests\/([^/]+)$/,
        methods: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
    },
    { name: 'upload-start', pattern: /^v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: (ctx, n) => startUpload(ctx, n) } },
    {
        name: 'upload',
        pattern: /^v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
        methods: { GET: uploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
    },
    { name: 'blob', pattern: /^v2\/(.+)\/blobs\/([^/]+)$/, methods: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob } },
    { name: 'referrers', pattern: /^v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: referrers } },
];
/** Finds the handler for a path relative to the prefix (e.g. `v2/foo/tags/list`). */
export function matchV2(method, path) {
    if (path === 'v2' || path === 'v2/') {
        if (method !== 'GET' && method !== 'HEAD')
            return methodNotAllowed('base', ['GET', 'HEAD']);
        return { route: 'base', run: apiBase };
    }
    if (!path.startsWith('v2/'))
        return null;
    for (const def of routes) {
        const m = def.pattern.exec(path);
        if (!m)
            continue;
        const handler = def.methods[method];
        if (!handler)
            return methodNotAllowed(def.name, Object.keys(def.methods));
        const name = m[1] ?? '';
        const arg = decode(m[2] ?? '');
        return {
            route: def.name,
            run: (ctx) => {
                if (def.name !== 'catalog')
                    assertName(name);
                return handler(ctx, name, arg);
            },
        };
    }
    return {
        route: 'unknown',
        run: async () => {
            throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${path.slice(0, 200)}`, undefined, { status: 404 });
        },
    };
}
function methodNotAllowed(route, allowed) {
    return {
        route,
        run: async () => {
            throw new RegistryError('UNSUPPORTED', `method not allowed; this endpoint supports ${allowed.join(', ')}`, undefined, { headers: { Allow: allowed.join(', ') } });
        },
    };
}
function decode(segment) {
    try {
        return decodeURIComponent(segment);
    }
    catch {
        return segment;
    }
}
