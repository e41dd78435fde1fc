/**
 * Routing for the /v2/ API. Repository names contain slashes, so routes are
 * matched from the end of the path (as distribution's router does) and the
 * name is validated before anything else sees it.
 */
import { RegistryError, assertName } from '../../registry/index.js';
import type { Action } from '../../access/types.js';
import type { AccessNeed, Ctx } from '../context.js';
import { apiBase } from './base.js';
import { deleteBlob, getBlob } from './blobs.js';
import { catalog, listTags, referrers } from './listings.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { cancelUpload, patchUpload, putUpload, startUpload, uploadStatus } from './uploads.js';

type Route = (ctx: Ctx, name: string, arg: string) => Promise<void>;

interface RouteDef {
  /** Route name, used in logs and metrics. */
  name: string;
  pattern: RegExp;
  methods: Record<string, Route>;
  /** What the route needs of the repository, by method (as distribution: reads pull, writes pull and push, deletes delete). */
  needs?: (method: string) => Action[];
}

const PULL: Action[] = ['pull'];
const PUSH: Action[] = ['pull', 'push'];
const DELETE: Action[] = ['delete'];
const byMethod = (method: string): Action[] => (method === 'GET' || method === 'HEAD' ? PULL : method === 'DELETE' ? DELETE : PUSH);

const routes: RouteDef[] = [
  { name: 'catalog', pattern: /^v2\/_catalog$/, methods: { GET: (ctx) => catalog(ctx) } },
  { name: 'tags', pattern: /^v2\/(.+)\/tags\/list$/, methods: { GET: (ctx, n) => listTags(ctx, n) }, needs: () => PULL },
  {
    name: 'manifest',
    pattern: /^v2\/(.+)\/manifests\/([^/]+)$/,
    methods: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
    needs: byMethod,
  },
  { name: 'upload-start', pattern: /^v2\/(.+)\/blobs\/uploads\/?$/, methods: { POST: (ctx, n) => startUpload(ctx, n) }, needs: () => PUSH },
  {
    name: 'upload',
    pattern: /^v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    methods: { GET: uploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
    // Cancelling an upload is part of pushing, not a delete of anything stored.
    needs: (method) => (method === 'GET' ? PULL : PUSH),
  },
  { name: 'blob', pattern: /^v2\/(.+)\/blobs\/([^/]+)$/, methods: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob }, needs: byMethod },
  { name: 'referrers', pattern: /^v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: referrers }, needs: () => PULL },
];

export interface Match {
  route: string;
  run: (ctx: Ctx) => Promise<void>;
  /**
   * What the request needs, decided before `run` (with accounts or token
   * auth on). Absent: nothing (an unknown endpoint, a refused method).
   */
  needs?: (ctx: Ctx) => AccessNeed[];
  /** Served without the edge's authentication (the token endpoint checks its own credentials). */
  public?: boolean;
  /**
   * Berth's JSON API with accounts on: the edge authenticates (wrong
   * credentials are a 401 without a challenge) and lets anonymous callers
   * through; the route decides what the principal may do.
   */
  decidesAccess?: boolean;
  /** The path with a one-component repository name rewritten (accounts on), for the logs and events that read ctx.path. */
  path?: string;
}

const BASE_NEEDS: AccessNeed[] = [{ kind: 'base' }];
const CATALOG_NEEDS: AccessNeed[] = [{ kind: 'catalog' }];

/**
 * Finds the handler for a path relative to the prefix (e.g. `v2/foo/tags/list`).
 * `canonicalName` (accounts on) rewrites a one-component name (`ubuntu` is
 * `library/ubuntu`) before anything else sees it.
 */
export function matchV2(method: string, path: string, canonicalName?: (name: string) => string): Match | null {
  if (path === 'v2' || path === 'v2/') {
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed('base', ['GET', 'HEAD']);
    return { route: 'base', run: apiBase, needs: () => BASE_NEEDS };
  }
  if (!path.startsWith('v2/')) return null;
  for (const def of routes) {
    const m = def.pattern.exec(path);
    if (!m) continue;
    const handler = def.methods[method];
    if (!handler) return methodNotAllowed(def.name, Object.keys(def.methods));
    let name = m[1] ?? '';
    let rewritten: string | undefined;
    if (canonicalName && def.name !== 'catalog' && !name.includes('/')) {
      const canonical = canonicalName(name);
      if (canonical !== name) {
        rewritten = `v2/${canonical}${path.slice(3 + name.length)}`;
        name = canonical;
      }
    }
    const arg = decode(m[2] ?? '');
    const needs = def.needs;
    return {
      route: def.name,
      path: rewritten,
      run: (ctx) => {
        if (def.name !== 'catalog') assertName(name);
        return handler(ctx, name, arg);
      },
      needs: needs
        ? (ctx) => {
            // A malformed name is refused as such before any access question is asked about it.
            assertName(name);
            const out: AccessNeed[] = [{ kind: 'repository', name, actions: needs(method) }];
            // A mount from another repository reads that one (distribution appends a pull record for `from`).
            const from = def.name === 'upload-start' ? ctx.query.get('from') : null;
            if (from !== null && ctx.query.has('mount')) {
              const source = ctx.canonicalName(from);
              assertName(source);
              if (source !== name) out.push({ kind: 'repository', name: source, actions: PULL });
            }
            return out;
          }
        : () => CATALOG_NEEDS,
    };
  }
  return {
    route: 'unknown',
    run: async () => {
      throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${path.slice(0, 200)}`, undefined, { status: 404 });
    },
  };
}

function methodNotAllowed(route: string, allowed: string[]): Match {
  return {
    route,
    run: async () => {
      throw new RegistryError('UNSUPPORTED', `method not allowed; this endpoint supports ${allowed.join(', ')}`, undefined, { headers: { Allow: allowed.join(', ') } });
    },
  };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
