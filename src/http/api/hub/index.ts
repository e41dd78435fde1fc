/**
 * The Hub's JSON API under /berth/v1/, door of src/http/api/hub. The edge
 * mounts it with createHubApi(…) and, per request, `api.route(method,
 * path)` (null: not this API's path, let the older /berth/v1 routes try)
 * then `route.handle(request)` with the principal it authenticated, and
 * writes the answer with writeApiResponse. Everything between is plain
 * values (types.ts), tested without a server.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { AccessMode } from '../../../access/policy.js';
import type { Principal } from '../../../access/types.js';
import { HubContext } from '../../../hub/context.js';
import { Principals } from '../../../hub/credentials.js';
import type { Actor, Discovery, Hub } from '../../../hub/index.js';
import type { MetadataStore } from '../../../metadata/store.js';
import { accountOperations } from './accounts.js';
import { operation, respond, type Services } from './common.js';
import { DISCOVERY_OPERATIONS, DISCOVERY_REPLACEMENTS } from './discovery.js';
import { IMAGE_OPERATIONS, type ImageSource } from './images.js';
import { ApiError, describeError, invalid } from './errors.js';
import { LEGACY_OPERATIONS, REGISTRY_REPOSITORY_OPERATIONS } from './legacy.js';
import { openApiDocument } from './openapi.js';
import { organizationOperations } from './organizations.js';
import { repositoryOperations } from './repositories.js';
import { Router } from './router.js';
import { EmptyQuery } from './schemas.js';
import { cookieValue, csrfMatches, csrfTokenOf, DEFAULT_SESSION_LIFETIME_MS, SESSION_COOKIE, SessionStore } from './sessions.js';
import type { ApiRequest, ApiResponse, AuthenticatedBy, Cookie, HandlerInput, Operation, OperationSpec, SessionInfo } from './types.js';

export type { ApiRequest, ApiResponse, Cookie } from './types.js';
export { ApiError, API_ERRORS } from './errors.js';
export { SESSION_COOKIE } from './sessions.js';
export { registryImages, type ImageSource } from './images.js';

/** Request bodies are small JSON documents. */
export const MAX_BODY_BYTES = 64 * 1024;

const SAFE_METHODS = new Set(['GET', 'HEAD']);

const openApiOperation = operation(
  {
    id: 'getOpenApi',
    method: 'GET',
    path: '/berth/v1/openapi.json',
    summary: 'This API as an OpenAPI 3.1 document',
    tag: 'meta',
    auth: 'none',
    response: { status: 200, description: 'the document', schema: z.record(z.string(), z.unknown()) },
    errors: [],
  },
  async () => {
    throw new Error('served by HubApi itself');
  },
);

/** Every operation this module serves without a Discovery, in routing order. */
export const HUB_OPERATIONS: readonly Operation<Services>[] = [...accountOperations, ...organizationOperations, ...repositoryOperations, openApiOperation];

/**
 * With a Discovery: the same, getRepository and updateRepository answering
 * the repository's page too, and search, tags, description, README,
 * official flag, stars, follows, activity and webhooks (discovery.ts).
 */
export const HUB_DISCOVERY_OPERATIONS: readonly Operation<Services>[] = [
  ...HUB_OPERATIONS.filter((op) => op !== openApiOperation).map((op) => DISCOVERY_REPLACEMENTS.find((r) => r.id === op.id) ?? op),
  ...DISCOVERY_OPERATIONS,
  ...IMAGE_OPERATIONS,
  openApiOperation,
];

export { LEGACY_OPERATIONS };

/**
 * With accounts off (mode 'open': no auth, or htpasswd), the Hub's reading
 * operations, on a registry where whoever the edge let in reads every
 * repository: search, repository pages, tags, a tag's image, activity. No
 * accounts, so no stars, follows, sessions or changes; those paths fall
 * through to the registry's own routes (REGISTRY_OPERATIONS) or 404.
 */
const OPEN_OPERATION_IDS = new Set(['searchRepositories', 'listRepositories', 'getRepository', 'listRepositoryTags', 'getRepositoryManifest', 'listRepositoryActivity', 'listNamespaceActivity']);
export const OPEN_OPERATIONS: readonly Operation<Services>[] = HUB_DISCOVERY_OPERATIONS.filter((op) => OPEN_OPERATION_IDS.has(op.id));

/** With accounts off, what /berth/v1/ serves besides OPEN_OPERATIONS: the registry's own routes (src/http/api/index.ts) and this document. */
export const REGISTRY_OPERATIONS: readonly OperationSpec<z.ZodType, z.ZodType | undefined, z.ZodType | undefined>[] = [...LEGACY_OPERATIONS, ...REGISTRY_REPOSITORY_OPERATIONS, openApiOperation];

/** The OpenAPI document of /berth/v1/ with accounts off (OPEN_OPERATIONS and REGISTRY_OPERATIONS; no sessions). */
export function registryApiDocument(options: { version?: string; serverUrl?: string }): Record<string, unknown> {
  // The open getRepository answers the registry's own GET of a repository, with more.
  const open = new Set(OPEN_OPERATIONS.map((op) => `${op.method} ${op.path}`));
  return openApiDocument([...OPEN_OPERATIONS, ...REGISTRY_OPERATIONS.filter((op) => !open.has(`${op.method} ${op.path}`))], { version: options.version ?? '1', serverUrl: options.serverUrl, sessions: false });
}

export interface HubApiOptions {
  /** 'open' (accounts off): OPEN_OPERATIONS only, everything readable, no sessions. Default 'accounts'. */
  mode?: AccessMode;
  hub: Hub;
  store: MetadataStore;
  /** Registry.deleteRepository, bound: `(name, actor) => registry.deleteRepository(name, actor)`. */
  deleteRepository(name: string, actor: string | undefined): Promise<{ manifests: number; tags: number }>;
  /** How long a browser session lasts (default 12 h). */
  sessionLifetimeMs?: number;
  /** Berth's version, for the OpenAPI document. */
  version?: string;
  /** The OpenAPI document's server URL: http.prefix without its last slash (default `/`). */
  serverUrl?: string;
  /**
   * The Hub's discovery services (createDiscovery over the same store, mode
   * 'accounts', the same policy): with it, search, repository pages, stars,
   * follows, activity and webhooks are served (HUB_DISCOVERY_OPERATIONS).
   */
  discovery?: Discovery;
  /** The registry's manifests and tags (registryImages), for the tag pages (served with discovery). */
  images?: ImageSource;
}

export interface HubApiRoute {
  /** The route label for logs and metrics: `api-<operationId>`. */
  route: string;
  /** The largest request body this route takes (MAX_BODY_BYTES but for a README's): the edge reads at most this. */
  maxBodyBytes: number;
  handle(request: ApiRequest): Promise<ApiResponse>;
}

export interface HubApi {
  /** The route for a path after the prefix (`berth/v1/orgs/acme`), or null when it is none of this API's. */
  route(method: string, path: string): HubApiRoute | null;
  /** route() and handle() in one: 404 UNSUPPORTED for a path of no operation. */
  handle(request: ApiRequest): Promise<ApiResponse>;
  /** The OpenAPI document (also served at berth/v1/openapi.json). */
  document(): Record<string, unknown>;
  /**
   * The principal of a request's session cookie, for /berth/v1/ routes
   * outside this API (gc, storage) that the web UI calls: null without a
   * live session; ApiError DENIED when a change lacks the CSRF token.
   */
  sessionPrincipal(headers: ApiRequest['headers'], method: string): Promise<Principal | null>;
}

function errorResponse(err: unknown): ApiResponse {
  const d = describeError(err);
  if (!d) throw err;
  return { status: d.status, body: { errors: [d.entry] }, headers: { ...d.headers }, cookies: [] };
}

function header(headers: ApiRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function actorOf(p: Principal, request: ApiRequest): Actor {
  const base = { requestId: request.requestId, client: request.client };
  switch (p.kind) {
    case 'user':
    case 'robot':
      return { ...base, name: p.name, id: p.id };
    case 'htpasswd':
      return { ...base, name: p.name };
    case 'granted':
      return { ...base, name: p.subject };
    default:
      return { ...base, name: null };
  }
}

function parseBody(op: Operation<Services>, request: ApiRequest): unknown {
  if (!op.body) return undefined;
  const raw = request.body;
  let value: unknown;
  if (raw && raw.byteLength > 0) {
    const limit = op.maxBodyBytes ?? MAX_BODY_BYTES;
    if (raw.byteLength > limit) throw new ApiError('TOO_LARGE', `the request body is larger than ${limit} bytes`);
    const type = (header(request.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) throw new ApiError('UNSUPPORTED_MEDIA_TYPE');
    try {
      value = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ApiError('INVALID', 'body: not valid JSON');
    }
  }
  const parsed = op.body.safeParse(value);
  if (!parsed.success) throw invalid('body', parsed.error);
  return parsed.data;
}

function parseQuery(op: Operation<Services>, query: URLSearchParams): unknown {
  const values: Record<string, string> = {};
  for (const [k, v] of query) {
    if (k in values) throw new ApiError('INVALID', `query.${k.slice(0, 50)}: given more than once`);
    values[k] = v;
  }
  const parsed = (op.query ?? EmptyQuery).safeParse(values);
  if (!parsed.success) throw invalid('query', parsed.error);
  return parsed.data;
}

export function createHubApi(options: HubApiOptions): HubApi {
  const context = new HubContext(options.store, options.hub.settings);
  const principals = new Principals(context);
  const mode = options.mode ?? 'accounts';
  // Without accounts: no `library/` alias for one-component names, and no sessions (a cookie says nothing).
  const accounts = mode === 'accounts';
  if (!accounts && !options.discovery) throw new Error('the open API serves only discovery: give it a Discovery');
  const services: Services = {
    mode,
    hub: options.hub,
    store: options.store,
    context,
    principals,
    sessions: new SessionStore(context, principals, options.sessionLifetimeMs ?? DEFAULT_SESSION_LIFETIME_MS),
    policy: { anonymousPull: options.hub.settings.anonymousPull },
    deleteRepository: options.deleteRepository,
    discovery: options.discovery,
    images: options.images,
  };
  const operations = !accounts ? OPEN_OPERATIONS : options.discovery ? HUB_DISCOVERY_OPERATIONS : HUB_OPERATIONS;
  const router = new Router(operations);
  let doc: Record<string, unknown> | undefined;
  const document = () => (doc ??= openApiDocument([...operations, ...LEGACY_OPERATIONS], { version: options.version ?? '1', serverUrl: options.serverUrl }));

  async function run(op: Operation<Services>, rawParams: Record<string, string>, request: ApiRequest): Promise<ApiResponse> {
    const params = Router.params(op, rawParams, accounts);
    if (op === openApiOperation) return respond(200, document());
    let principal = request.principal;
    let authenticatedBy: AuthenticatedBy = request.authorized ? 'authorization' : 'none';
    let session: SessionInfo | null = null;
    const secret = request.authorized || !accounts ? null : cookieValue(header(request.headers, 'cookie'), SESSION_COOKIE);
    // Logging in looks at no session: the cookie of an old one must not decide anything.
    if (secret && op.auth !== 'none') {
      const live = await services.sessions.resolve(secret);
      if (live) {
        principal = live.principal;
        authenticatedBy = 'session';
        session = { hash: live.hash, csrfToken: csrfTokenOf(secret), expiresAt: live.expiresAt };
        if (!SAFE_METHODS.has(op.method)) {
          const presented = header(request.headers, 'x-csrf-token');
          if (!presented || !csrfMatches(secret, presented)) throw new ApiError('DENIED', 'requested access to the resource is denied: a request authenticated by the session cookie needs its X-CSRF-Token');
        }
      }
    }
    if (op.auth === 'required' && principal.kind === 'anonymous') throw new ApiError('UNAUTHORIZED');
    const query = parseQuery(op, request.query);
    const body = parseBody(op, request);
    const input: HandlerInput<Record<string, string>, unknown, unknown> = {
      params,
      query,
      body,
      principal,
      authenticatedBy,
      session,
      sessionSecret: secret,
      actor: actorOf(principal, request),
      requestId: request.requestId,
      client: request.client,
      tls: request.tls,
      prefix: request.prefix,
      path: request.path,
      rawQuery: request.query,
    };
    return op.handler(services, input);
  }

  const api: HubApi = {
    route(method, path) {
      const m = router.match(method, path);
      if (!m) return null;
      if (m.kind === 'method not allowed') {
        return {
          route: 'api-method-not-allowed',
          maxBodyBytes: MAX_BODY_BYTES,
          handle: async () =>
            errorResponse(new ApiError('UNSUPPORTED', `method not allowed; this endpoint supports ${m.allowed.join(', ')}`, undefined, { Allow: m.allowed.join(', ') })),
        };
      }
      return {
        route: `api-${m.op.id}`,
        maxBodyBytes: m.op.maxBodyBytes ?? MAX_BODY_BYTES,
        handle: async (request) => {
          try {
            return await run(m.op, m.params, request);
          } catch (err) {
            return errorResponse(err);
          }
        },
      };
    },
    async handle(request) {
      const r = api.route(request.method, request.path);
      if (!r) return errorResponse(new ApiError('NOT_FOUND', `no such API endpoint: /${request.path.slice(0, 200)}`));
      return r.handle(request);
    },
    document,
    async sessionPrincipal(headers, method) {
      if (!accounts) return null;
      const secret = cookieValue(header(headers, 'cookie'), SESSION_COOKIE);
      if (!secret) return null;
      const live = await services.sessions.resolve(secret);
      if (!live) return null;
      if (!SAFE_METHODS.has(method)) {
        const presented = header(headers, 'x-csrf-token');
        if (!presented || !csrfMatches(secret, presented)) throw new ApiError('DENIED', 'requested access to the resource is denied: a request authenticated by the session cookie needs its X-CSRF-Token');
      }
      return live.principal;
    },
  };
  return api;
}

// ---- for the edge: node:http in and out ----------------------------------------------------

export function serializeCookie(c: Cookie): string {
  const parts = [`${c.name}=${c.value}`, `Path=${c.path}`, `Max-Age=${c.maxAge}`, `SameSite=${c.sameSite}`];
  if (c.maxAge === 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (c.httpOnly) parts.push('HttpOnly');
  if (c.secure) parts.push('Secure');
  return parts.join('; ');
}

/** Writes an ApiResponse: JSON body, headers, Set-Cookie. */
export function writeApiResponse(res: ServerResponse, response: ApiResponse, method = 'GET'): void {
  const headers: Record<string, string | string[] | number> = { ...response.headers };
  if (response.cookies.length) headers['Set-Cookie'] = response.cookies.map(serializeCookie);
  if (response.body === undefined) {
    res.writeHead(response.status, { ...headers, 'Content-Length': 0 });
    res.end();
    return;
  }
  const data = Buffer.from(JSON.stringify(response.body));
  res.writeHead(response.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.byteLength, ...headers });
  res.end(method === 'HEAD' ? undefined : data);
}
