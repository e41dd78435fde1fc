/**
 * The Hub's JSON API (src/http/api/hub) on the HTTP edge, with accounts on:
 * its routes as the edge's Matches, each request's body read within bounds,
 * and the answer written. The edge has authenticated the request (its
 * Authorization header) into ctx.principal before `run`; the API looks at
 * the session cookie and decides everything else itself (`decidesAccess`).
 */
import type { IncomingMessage } from 'node:http';
import { closeAfterRefusal } from '../server.js';
import type { Ctx } from '../context.js';
import type { Match } from '../v2/index.js';
import { ApiError, MAX_BODY_BYTES, writeApiResponse, type ApiResponse, type HubApi } from './hub/index.js';
import { describeError } from './hub/errors.js';
import { RegistryError } from '../../registry/index.js';

export interface HubRoutesOptions {
  api: HubApi;
  /** http.prefix, for the session cookie's Path and Link headers. */
  prefix: string;
  /** Served over TLS: the session cookie is then Secure. */
  tls: boolean;
}

const EMPTY = Buffer.alloc(0);

function isJson(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/** A body is coming: node:http has a Transfer-Encoding or a non-zero Content-Length for one. */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

const tooLarge = (limit: number) => new ApiError('TOO_LARGE', `the request body is larger than ${limit} bytes`);

/**
 * The request's body, at most `limit` bytes of JSON (the route's own bound:
 * MAX_BODY_BYTES, more for a README). Anything else is
 * refused without reading on (a declared size over the bound, a body that
 * is not JSON) or as soon as it passes the bound: the edge then closes the
 * connection after the answer rather than read what is left.
 */
function readBody(ctx: Ctx, limit: number): Promise<Buffer> {
  const req = ctx.req;
  if (!hasBody(req)) return Promise.resolve(EMPTY);
  if (!isJson(req.headers['content-type'])) return Promise.reject(new ApiError('UNSUPPORTED_MEDIA_TYPE'));
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(tooLarge(limit));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        // Not destroyed: the answer must still go out on this socket.
        req.pause();
        reject(err);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      ctx.bytesIn += chunk.byteLength;
      if (size > limit) return done(tooLarge(limit));
      chunks.push(chunk);
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function errorAnswer(err: unknown): ApiResponse {
  const d = describeError(err);
  if (!d) throw err;
  return { status: d.status, body: { errors: [d.entry] }, headers: { ...d.headers }, cookies: [] };
}

/** The Hub API's routes for the edge's `api` hook: null for paths it does not serve (the older /berth/v1 routes take those). */
export function hubApiRoutes(options: HubRoutesOptions): (method: string, path: string) => Match | null {
  const { api, prefix, tls } = options;
  return (method, path) => {
    const r = api.route(method, path);
    if (!r) return null;
    return {
      route: r.route,
      decidesAccess: true,
      run: async (ctx) => {
        let body: Buffer;
        try {
          body = await readBody(ctx, r.maxBodyBytes);
        } catch (err) {
          closeAfterRefusal(ctx.req, ctx.res);
          writeApiResponse(ctx.res, errorAnswer(err), method);
          return;
        }
        const answer = await r.handle({
          method,
          path: ctx.path,
          query: ctx.query,
          headers: ctx.req.headers,
          body,
          principal: ctx.principal,
          // The edge answered 401 for an Authorization header it did not accept: one that is here was accepted.
          authorized: Boolean(ctx.req.headers.authorization),
          requestId: ctx.id,
          client: ctx.req.socket?.remoteAddress ?? '',
          tls,
          prefix,
        });
        writeApiResponse(ctx.res, answer, method);
      },
    };
  };
}

/**
 * The older /berth/v1 routes (gc, storage; src/http/api/index.ts) with the
 * Hub's session cookie as a way in, as the Hub's own routes have it: the web
 * UI's administrators collect garbage and read storage use from the
 * browser. An Authorization header still wins; a change needs the CSRF token.
 */
export function withSessionCookie(api: HubApi): (match: Match | null) => Match | null {
  return (match) => {
    if (!match || !match.decidesAccess) return match;
    const run = match.run;
    return {
      ...match,
      run: async (ctx) => {
        if (!ctx.req.headers.authorization && ctx.holder.kind === 'anonymous') {
          let principal;
          try {
            principal = await api.sessionPrincipal(ctx.req.headers, ctx.req.method ?? 'GET');
          } catch (err) {
            if (err instanceof ApiError) throw new RegistryError('DENIED', err.message, undefined, { status: err.status });
            throw err;
          }
          if (principal) ctx.principal = ctx.holder = principal;
        }
        await run(ctx);
      },
    };
  };
}
