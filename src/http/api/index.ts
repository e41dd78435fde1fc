/**
 * Berth's own API under /berth/v1/: what the distribution API has no verb
 * for. Repository delete, storage accounting and garbage collection now;
 * accounts, organisations and the rest later.
 */
import { parseDuration } from '../../config/index.js';
import type { CollectionRun, GarbageCollector } from '../../gc/index.js';
import { RegistryError, assertName } from '../../registry/index.js';
import type { AccessNeed, Ctx } from '../context.js';
import { isAdministrator } from '../authorize.js';
import { sendJSON } from '../respond.js';
import type { Match } from '../v2/index.js';

export interface ApiServices {
  gc: GarbageCollector;
  gcDefaults: { graceMs: number; deleteUntagged: boolean };
  /**
   * Who may use this API. `open`: everyone (a registry without auth, where
   * everyone is anonymous and may do everything, as today). Otherwise only
   * the named users (berth.admins); with none named, nobody. `edge`
   * (accounts on): the edge's access decision, on each route's needs
   * (administrators; a repository's delete needs `delete` on it).
   */
  admins: 'open' | 'edge' | readonly string[];
  /** The OpenAPI document served at berth/v1/openapi.json (to anyone) when the Hub API does not serve it (accounts off). */
  openapi?: () => Promise<Record<string, unknown>>;
}

/**
 * Without accounts, this API (collections, repository deletes, storage
 * usage) is for the users berth.admins names. With accounts, for the Hub's
 * administrators, decided here as the Hub's JSON API decides (the edge lets
 * anonymous callers through to Berth's API): the holder of the credentials,
 * as the edge's `admin` need did.
 */
function assertAdmin(admins: ApiServices['admins'], ctx: Ctx): void {
  if (admins === 'open') return;
  if (admins === 'edge') {
    if (ctx.holder.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'authentication required');
    if (!isAdministrator(ctx.holder)) throw new RegistryError('DENIED', 'requested access to the resource is denied: this is for administrators', undefined, { status: 403 });
    return;
  }
  const name = ctx.identity.name;
  if (name !== undefined && admins.includes(name)) return;
  const why = admins.length === 0 ? 'no administrators are configured (berth.admins)' : 'it is for the users berth.admins names';
  throw new RegistryError('DENIED', `requested access to the resource is denied: ${why}`, undefined, { status: 403 });
}

const ADMIN: AccessNeed[] = [{ kind: 'admin' }];

const GC_PARAMETERS = ['dryrun', 'deleteuntagged', 'grace', 'wait'];
/** The longest POST /berth/v1/gc?wait holds a request (and what wait=true means); past it the answer is 202 and the client polls. */
const MAX_GC_WAIT_MS = 5 * 60_000;

function badParameter(name: string, message: string, value?: string): RegistryError {
  return new RegistryError('UNSUPPORTED', message, { [name.slice(0, 50)]: value?.slice(0, 50) ?? null }, { status: 400 });
}

function flag(ctx: Ctx, name: string): boolean | undefined {
  const v = ctx.query.get(name);
  if (v === null) return undefined;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw badParameter(name, `query parameter ${name} must be true or false`, v);
}

/** A Go duration (`grace=1h30m`, `grace=0s`) in milliseconds. */
function duration(ctx: Ctx, name: string): number | undefined {
  const v = ctx.query.get(name);
  if (v === null) return undefined;
  try {
    return parseDuration(v, name);
  } catch {
    throw badParameter(name, `query parameter ${name} must be a duration such as 0s, 30m or 24h`, v);
  }
}

/** `wait=true` (the longest wait), `wait=<duration>` up to that, or no wait. */
function waitFor(ctx: Ctx): number {
  const v = ctx.query.get('wait');
  if (v === null || v === 'false' || v === '0') return 0;
  if (v === '' || v === 'true' || v === '1') return MAX_GC_WAIT_MS;
  const ms = duration(ctx, 'wait')!;
  if (ms > MAX_GC_WAIT_MS) throw badParameter('wait', `query parameter wait must be at most ${MAX_GC_WAIT_MS / 60_000}m; poll the run's Location for longer`, v);
  return ms;
}

function runNotFound(id: string): RegistryError {
  return new RegistryError('UNSUPPORTED', `no garbage collection run ${id.slice(0, 50)}`, { run: id.slice(0, 50) }, { status: 404 });
}

export function createApiRoutes(services: ApiServices): (method: string, path: string) => Match | null {
  return (method, path) => {
    if (!path.startsWith('berth/v1/')) return null;
    const rest = path.slice('berth/v1/'.length);
    const allow = (route: string, methods: string[], run: (ctx: Ctx) => Promise<void>, needs?: () => AccessNeed[]): Match =>
      methods.includes(method)
        ? {
            route,
            needs: needs ?? (() => ADMIN),
            // Accounts on: administrators' routes decide for themselves (assertAdmin), as the Hub's API does.
            decidesAccess: needs === undefined && services.admins === 'edge',
            run: async (ctx) => {
              // With accounts, a route with needs of its own was decided by the edge.
              if (!(needs && services.admins === 'edge')) assertAdmin(services.admins, ctx);
              await run(ctx);
            },
          }
        : {
            route,
            decidesAccess: services.admins === 'edge',
            run: async () => {
              throw new RegistryError('UNSUPPORTED', `method not allowed; this endpoint supports ${methods.join(', ')}`, undefined, { headers: { Allow: methods.join(', ') } });
            },
          };

    if (rest === 'gc') {
      return allow('api-gc', ['POST'], async (ctx) => {
        // A misspelt parameter (dryRun, dry-run) must not turn a dry run into a real one.
        for (const name of ctx.query.keys()) {
          if (!GC_PARAMETERS.includes(name)) throw badParameter(name, `unknown query parameter ${name}; this endpoint takes ${GC_PARAMETERS.join(', ')}`);
        }
        const dryRun = flag(ctx, 'dryrun') ?? false;
        const opts = { graceMs: duration(ctx, 'grace') ?? services.gcDefaults.graceMs, deleteUntagged: flag(ctx, 'deleteuntagged') ?? services.gcDefaults.deleteUntagged, dryRun };
        const waitMs = waitFor(ctx);
        if (!dryRun) ctx.registry.assertDeletable();
        // The collection runs outside the request: started here (or joined,
        // when one with the same options is queued or running anywhere), and
        // reported by its run resource.
        let run: CollectionRun | null = await services.gc.start(opts);
        const location = ctx.urls.path(`berth/v1/gc/runs/${run.id}`);
        if (waitMs > 0) run = (await services.gc.wait(run.id, waitMs)) ?? run;
        if (run.state === 'failed') {
          throw new RegistryError('UNKNOWN', `garbage collection ${run.id} failed: ${run.error ?? 'unknown error'}`, run, { status: 500, headers: { Location: location } });
        }
        sendJSON(ctx.res, run.state === 'finished' ? 200 : 202, run, { Location: location });
      });
    }
    const gcRun = /^gc\/runs\/([^/]+)$/.exec(rest);
    if (gcRun) {
      const id = gcRun[1]!;
      return allow('api-gc-run', ['GET'], async (ctx) => {
        if (id !== 'latest' && !/^[1-9]\d{0,14}$/.test(id)) throw runNotFound(id);
        const run = await services.gc.status(id === 'latest' ? 'latest' : Number(id));
        if (!run) throw runNotFound(id);
        sendJSON(ctx.res, 200, run);
      });
    }
    if (rest === 'openapi.json' && services.openapi) {
      const document = services.openapi;
      if (method !== 'GET') {
        return { route: 'api-openapi', public: true, run: async () => { throw new RegistryError('UNSUPPORTED', 'method not allowed; this endpoint supports GET', undefined, { headers: { Allow: 'GET' } }); } };
      }
      return { route: 'api-openapi', public: true, run: async (ctx) => sendJSON(ctx.res, 200, await document()) };
    }
    if (rest === 'storage') {
      return allow('api-storage', ['GET'], async (ctx) => {
        sendJSON(ctx.res, 200, await ctx.registry.meta.collection.storageUsage());
      });
    }
    const repo = /^repositories\/(.+)$/.exec(rest);
    if (repo) {
      const name = repo[1]!;
      // Accounts on: an administrator, or whoever may delete (read, for its usage) that repository.
      const needs = (): AccessNeed[] => {
        assertName(name);
        return [{ kind: 'repository', name, actions: [method === 'DELETE' ? 'delete' : 'pull'] }];
      };
      return allow('api-repository', ['GET', 'DELETE'], async (ctx) => {
        assertName(name);
        if (ctx.req.method === 'DELETE') {
          const deleted = await ctx.registry.deleteRepository(name, ctx.identity.name);
          sendJSON(ctx.res, 202, { repository: name, manifestsDeleted: deleted.manifests, tagsDeleted: deleted.tags });
          return;
        }
        // Queries scoped to this repository (indexed), not the whole registry's accounting filtered.
        const usage = await ctx.registry.meta.collection.repositoryUsage(name);
        if (!usage) throw new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name });
        sendJSON(ctx.res, 200, { name, sizeBytes: usage.bytes, blobs: usage.blobs, tags: usage.tags });
      }, needs);
    }
    return {
      route: 'api-unknown',
      run: async () => {
        throw new RegistryError('UNSUPPORTED', `no such API endpoint: /berth/v1/${rest.slice(0, 200)}`, undefined, { status: 404 });
      },
    };
  };
}
