/**
 * What the JSON API's handlers take and give: plain values, no node:http
 * objects, so that they are tested directly and mounted by the edge with a
 * few lines (see index.ts).
 */
import type { z } from 'zod';
import type { Principal } from '../../../access/types.js';
import type { Actor } from '../../../hub/index.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One request as the edge hands it over. */
export interface ApiRequest {
  method: string;
  /** The path after the configured prefix, still percent-encoded: `berth/v1/orgs/acme`. */
  path: string;
  query: URLSearchParams;
  /** The request headers (node's IncomingHttpHeaders fits): cookie, x-csrf-token and content-type are read. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The raw body (read by the edge up to MAX_BODY_BYTES), or undefined/empty when there is none. */
  body?: Buffer;
  /**
   * Who the edge authenticated from the Authorization header (Basic with a
   * password, personal access token or robot secret; Bearer with Berth's
   * JWT), or `{ kind: 'anonymous' }` when the request carried none: the API
   * then looks at its session cookie.
   */
  principal: Principal;
  /** Whether the request carried an Authorization header that the edge accepted (then the cookie is ignored). */
  authorized: boolean;
  requestId: string;
  /** The client's address (for login limits and the audit log). */
  client: string;
  /** Served over TLS: the session cookie is then Secure. */
  tls: boolean;
  /** http.prefix, e.g. `/` or `/registry/` (for the cookie's Path and Link headers). */
  prefix: string;
}

export interface Cookie {
  name: string;
  value: string;
  path: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'Strict' | 'Lax';
  /** Seconds; 0 removes the cookie. */
  maxAge: number;
}

/** One response, for the edge to write (index.ts's writeApiResponse does). */
export interface ApiResponse {
  status: number;
  /** JSON-serialisable; undefined for no body. */
  body?: unknown;
  headers: Record<string, string>;
  cookies: Cookie[];
}

/** How the principal of a request was established. */
export type AuthenticatedBy = 'authorization' | 'session' | 'none';

export interface SessionInfo {
  /** SHA-256 of the session secret (the cookie's value). */
  hash: string;
  csrfToken: string;
  expiresAt: number;
}

/** What every handler gets: the parsed, validated parts of the request and who is asking. */
export interface HandlerInput<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  authenticatedBy: AuthenticatedBy;
  /** Set when the principal came from the session cookie. */
  session: SessionInfo | null;
  /** The session cookie's value, when there is one (log out needs it). */
  sessionSecret: string | null;
  /** Who acts, for the audit log: the principal's name and id, the request id, the client address. */
  actor: Actor;
  requestId: string;
  client: string;
  tls: boolean;
  prefix: string;
  /** The request path after the prefix (percent-encoded) and its query, for Link headers. */
  path: string;
  rawQuery: URLSearchParams;
}

/** How a path parameter is checked before it reaches a query. */
export type ParamKind = 'account' | 'namespace' | 'team' | 'robot' | 'repository' | 'id' | 'run' | 'tag' | 'reference';

/** Who may call an operation at all (the handler decides the rest). */
export type Authentication = 'none' | 'optional' | 'required';

export interface OperationSpec<Q extends z.ZodType, B extends z.ZodType | undefined, R extends z.ZodType | undefined> {
  id: string;
  method: Method;
  /** OpenAPI template under the server root: `/berth/v1/orgs/{org}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  auth: Authentication;
  params?: Record<string, ParamKind>;
  query?: Q;
  body?: B;
  response: { status: number; description: string; schema?: R };
  /** Statuses of errors this operation may answer (besides 400, 401, 500, which all may). */
  errors: number[];
  /** A list: answers with `Link: <…>; rel="next"` when more follow. */
  paginated?: boolean;
  /** The largest body this operation takes (default MAX_BODY_BYTES, 64 KiB): a README's is larger. */
  maxBodyBytes?: number;
}

export interface Operation<S = unknown> extends OperationSpec<z.ZodType, z.ZodType | undefined, z.ZodType | undefined> {
  handler: (services: S, input: HandlerInput<Record<string, string>, unknown, unknown>) => Promise<ApiResponse>;
}
