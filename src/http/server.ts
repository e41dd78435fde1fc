/**
 * The HTTP edge: one node:http server, a request id and one structured log
 * line per request, the prefix, common headers, routing and the error
 * envelope. node:http rather than a framework: the registry needs raw
 * streaming bodies of any content type and little else, and every
 * microsecond per request shows in manifest and blob-HEAD throughput.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { SecureVersion } from 'node:tls';
import type { Logger } from 'pino';
import type { SendfileMode } from '../config/config.js';
import type { Principal } from '../access/types.js';
import { anonymous, type AuthFailure, type Authenticator, type Identity } from '../auth/index.js';
import type { EventSink } from '../events/index.js';
import { emitRequestEvents, mayProduceChanges, mayProduceEvents } from './events.js';
import type { HealthChecks } from '../health/index.js';
import type { Metrics } from './metrics.js';
import type { Registry } from '../registry/index.js';
import { isRegistryError, RegistryError } from '../registry/index.js';
import type { EdgeAuthenticator } from './authenticate.js';
import type { EdgeAccess } from './authorize.js';
import type { AccessNeed, Ctx, PullRecorder, RequestAccess } from './context.js';
import { bindAddress } from './bind.js';
import { redactQuery } from './redact.js';
import { sendError } from './respond.js';
import { RegistryResponse, sentHeader } from './response.js';
import { UrlBuilder, type UrlOptions } from './urls.js';
import { matchV2, type Match } from './v2/index.js';

export interface HttpOptions {
  prefix: string;
  host?: string;
  relativeUrls: boolean;
  /** http.headers: added to every response. */
  headers: Record<string, string[]>;
  accessLog: boolean;
  tls: boolean;
  /** berth.sendfile: how blob bodies leave (src/http/v2/blobs.ts). */
  sendfile: SendfileMode;
}

export interface EdgeServices {
  registry: Registry;
  log: Logger;
  auth?: Authenticator;
  metrics?: Metrics;
  /** When checks fail, the API answers 503 (as distribution's health.Handler does). */
  health?: HealthChecks;
  /** Routes beyond /v2/ (Berth's own API). */
  api?: (method: string, path: string) => Match | null;
  /** Events of successful requests: for notification endpoints (push, pull, mount, delete), and the Hub's activity and webhooks. */
  events?: EventSink;
  /**
   * Which requests `events` are built for: `all` (notification endpoints
   * are configured; the default), or only `changes` (manifest pushes and
   * deletes, blob deletes), so that without endpoints a pull builds nothing.
   */
  eventKinds?: 'all' | 'changes';
  /** Counts manifest GETs answered 200 (discovery's pull counts). */
  pulls?: PullRecorder;
  /** `/v1/_ping` and `/v1/search` (docker search). */
  v1?: (method: string, path: string) => Match | null;
  /**
   * Accounts (`auth.accounts`) or an external token server (`auth.token`):
   * who is asking, and the access decision every route's needs go through.
   * Absent: `auth` as registry:2 (anonymous or htpasswd) decides alone.
   */
  access?: {
    authenticator: EdgeAuthenticator;
    control: EdgeAccess;
    /** Accounts on: one-component names are `library/NAME`. */
    canonicalName?: (name: string) => string;
  };
  /** The token endpoint and its keys (accounts on). */
  token?: (method: string, path: string) => Match | null;
  /** The web UI's pages and assets (berth.ui.enabled), tried after every other route. */
  web?: (method: string, path: string) => Match | null;
}

const ANONYMOUS: Principal = { kind: 'anonymous' };
/** Without accounts or token auth, everyone may read everything (as registry:2). */
const OPEN_ACCESS: RequestAccess = { catalogFilter: () => undefined, mayRead: () => true };
const NO_NEEDS: AccessNeed[] = [];
const sameName = (name: string) => name;

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Request ids: a random prefix for this thread and a counter. Unique without
 * a random draw for every request (a measurable share of a small request).
 */
const requestIdPrefix = randomBytes(9).toString('base64url');
let requestCount = 0;
const newRequestId = () => `${requestIdPrefix}-${(++requestCount).toString(36)}`;

/** The query of a request without one; nothing writes to a request's query. */
const NO_QUERY = new URLSearchParams();

export function createRequestHandler(services: EdgeServices, opts: HttpOptions) {
  const { registry, log, metrics, health } = services;
  const auth = services.auth ?? anonymous;
  const access = services.access;
  const canonicalName = access?.canonicalName;
  const urlOptions: UrlOptions = { prefix: opts.prefix, host: opts.host, relative: opts.relativeUrls, tls: opts.tls };
  const fixedHeaders = opts.headers;
  const events = services.events;
  const allEvents = services.eventKinds !== 'changes';
  const wants = allEvents ? mayProduceEvents : mayProduceChanges;
  const pulls = services.pulls;

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const incomingId = req.headers['x-request-id'];
    const id = typeof incomingId === 'string' && REQUEST_ID_RE.test(incomingId) ? incomingId : newRequestId();
    const rawUrl = originForm(req);
    const q = rawUrl.indexOf('?');
    const fullPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = q === -1 ? NO_QUERY : new URLSearchParams(rawUrl.slice(q + 1));

    (res as RegistryResponse).requestId = id;
    (res as RegistryResponse).fixedHeaders = fixedHeaders;

    const ctx: Ctx = {
      req,
      res,
      id,
      path: '',
      query,
      registry,
      urls: new UrlBuilder(urlOptions, req),
      log,
      bytesIn: 0,
      identity: {},
      principal: ANONYMOUS,
      holder: ANONYMOUS,
      access: access?.control ?? OPEN_ACCESS,
      canonicalName: canonicalName ?? sameName,
      pulls,
      sendfile: opts.sendfile,
    };
    let route = 'unknown';
    let error: unknown;
    let identity: Identity = {};
    // Why authentication failed, and for whom: logged, never told to the client.
    let authError: AuthFailure | string | undefined;
    let authUser: string | undefined;
    let aborted = false;
    // Counted in the route's in-flight gauge until the response is done.
    let entered = false;
    let eventsRecorded = false;
    // Changes come only from PUT and DELETE: without notification endpoints, other requests skip the hook entirely.
    const eventful = events !== undefined && (allEvents || req.method === 'PUT' || req.method === 'DELETE');
    const recordEvents = eventful
      ? async () => {
          eventsRecorded = true;
          await emitRequestEvents(events, route, ctx, log, wants);
        }
      : undefined;
    if (recordEvents) (res as RegistryResponse).beforeEnd = recordEvents;
    try {
      if (fullPath === '/livez' || fullPath === '/readyz') {
        route = fullPath.slice(1);
        probe(res, fullPath === '/livez' || !health || health.healthy());
        return;
      }
      if (!fullPath.startsWith(opts.prefix) && `${fullPath}/` !== opts.prefix) {
        throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${fullPath.slice(0, 200)}`, undefined, { status: 404 });
      }
      ctx.path = fullPath.slice(opts.prefix.length);
      const method = req.method ?? 'GET';
      const match = matchV2(method, ctx.path, canonicalName) ?? services.v1?.(method, ctx.path) ?? services.api?.(method, ctx.path) ?? services.token?.(method, ctx.path) ?? services.web?.(method, ctx.path) ?? null;
      if (!match) throw new RegistryError('UNSUPPORTED', `no such API endpoint: ${fullPath.slice(0, 200)}`, undefined, { status: 404 });
      route = match.route;
      if (match.path !== undefined) ctx.path = match.path;
      if (metrics) {
        metrics.enter(route);
        entered = true;
      }
      if (health && !health.healthy()) {
        // No detail: the failing checks (paths, URIs) are for the debug server only.
        throw new RegistryError('UNAVAILABLE', 'the registry is unhealthy', undefined, { status: 503 });
      }
      if (match.public) {
        // The token endpoint: it checks its own credentials.
      } else if (access) {
        const api = match.decidesAccess === true;
        // Malformed names are refused before any question about them is asked.
        const needs = api ? NO_NEEDS : (match.needs?.(ctx) ?? NO_NEEDS);
        const result = await access.authenticator.authenticate(req, id);
        if (!result.ok) {
          authError = result.reason;
          authUser = result.user;
          // The JSON API's 401 carries no challenge: a Basic one would make browsers offer their login dialog.
          if (api) throw new RegistryError('UNAUTHORIZED', 'authentication required');
          throw access.control.unauthorized(ctx, needs, result.credentials === 'bearer' ? 'invalid_token' : undefined);
        }
        ctx.principal = result.principal;
        ctx.holder = result.holder;
        identity = result.name === undefined ? {} : { name: result.name };
        ctx.identity = identity;
        if (!api) await access.control.authorize(ctx, needs);
      } else {
        const result = await auth.authenticate(req.headers);
        if (!result.ok) {
          authError = result.reason;
          authUser = result.user;
          throw new RegistryError('UNAUTHORIZED', 'authentication required', null, { headers: { 'WWW-Authenticate': result.challenge } });
        }
        identity = result.identity;
        ctx.identity = identity;
        if (identity.name !== undefined) ctx.principal = ctx.holder = { kind: 'htpasswd', name: identity.name };
      }
      await match.run(ctx);
    } catch (err) {
      error = err;
      if (!isRegistryError(err) && !isClientAbort(err, req)) {
        log.error({ reqId: id, err }, 'request failed');
      }
      if (isClientAbort(err, req)) {
        aborted = true;
        res.destroy();
      } else {
        if (isRegistryError(err)) closeAfterRefusal(req, res);
        sendError(res, err);
      }
    }
    if (opts.accessLog || metrics) {
      const finish = () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const bytesOut = Number(sentHeader(res, 'content-length') ?? 0);
        metrics?.observeRequest(route, req.method ?? '', res.statusCode, ms / 1000, ctx.bytesIn, req.method === 'HEAD' ? 0 : bytesOut, entered);
        if (!opts.accessLog) return;
        log.info(
          {
            reqId: id,
            method: req.method,
            path: fullPath,
            query: q === -1 ? undefined : redactQuery(rawUrl.slice(q + 1)),
            route,
            status: res.statusCode,
            ms: Math.round(ms * 1000) / 1000,
            bytesIn: ctx.bytesIn,
            bytesOut,
            remote: req.socket?.remoteAddress,
            user: identity.name,
            authError,
            authUser,
            ua: req.headers['user-agent'],
            error: isRegistryError(error) ? error.code : aborted ? 'CLIENT_CLOSED' : error ? 'INTERNAL' : undefined,
          },
          'request',
        );
      };
      if (res.writableFinished || res.destroyed) finish();
      else res.once('close', finish);
    }
    // Events are recorded as the response ends (RegistryResponse.beforeEnd). A
    // client that hangs up after a success was sent (skopeo does, having read
    // a whole blob) ends none, yet still pulled or pushed.
    if (recordEvents && !eventsRecorded && (error === undefined || (res.headersSent && isClientAbort(error, req)))) await recordEvents();
  };
}

/** `http://authority` at the start of an absolute-form request target; the scheme is case-insensitive. */
const ABSOLUTE_FORM_RE = /^https?:\/\/([^/?#]*)/i;

/**
 * The request target as origin-form (path and query). An absolute-form
 * target (`GET http://host/v2/… HTTP/1.1`, RFC 9112 §3.2.2), which a
 * server must accept, is served as its path and query; its authority
 * replaces the Host header, which the RFC says to ignore then, so the
 * URLs the registry hands out name the host the client asked. The path is
 * kept byte for byte (no URL parser: it would resolve `..` and re-encode).
 */
function originForm(req: IncomingMessage): string {
  const target = req.url ?? '/';
  if (target.startsWith('/')) return target;
  const m = ABSOLUTE_FORM_RE.exec(target);
  if (!m) return target;
  const authority = m[1]!.replace(/^[^@]*@/, '');
  if (authority !== '') req.headers.host = authority;
  const rest = target.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** How long a refused request's connection lingers after the answer, and the most of its body read meanwhile. */
const LINGER_MS = 2000;
const LINGER_BYTES = 4 * 1024 * 1024;

/**
 * A refused request whose body is still arriving (a chunk refused with 409
 * or 416, or a 401, before any of it was read): its connection is closed
 * rather than the rest of the body read, which would let an anonymous
 * client make the server read any amount. The answer goes out with
 * `Connection: close`, then a lingering close: FIN, then the body is read
 * and dropped for at most LINGER_MS and LINGER_BYTES, then the socket is
 * destroyed. Destroying at once would make the kernel reset a connection
 * still receiving, and a client still sending could lose the answer.
 */
export function closeAfterRefusal(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete || req.destroyed || res.headersSent) return;
  const socket = req.socket;
  res.setHeader('Connection', 'close');
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  let seen = 0;
  // A reader of our own: it counts, and keeps node:http from dumping the rest unbounded.
  req.on('data', (chunk: Buffer) => {
    seen += chunk.byteLength;
    if (seen > LINGER_BYTES) stop();
  });
  req.on('error', () => {});
  req.resume();
  // node:http ends a `Connection: close` response with socket.destroySoon(),
  // which destroys right after the FIN; this socket lingers instead.
  socket.destroySoon = () => {
    socket.end();
    timer = setTimeout(stop, LINGER_MS);
    timer.unref();
    const stopIfDone = () => {
      if (socket.writableFinished && req.complete) stop();
    };
    req.once('end', stopIfDone);
    socket.once('finish', stopIfDone);
    socket.once('close', () => clearTimeout(timer));
  };
}

/**
 * The API's /livez and /readyz answer anyone, so they say only whether the
 * registry is healthy: a check's name is a file path or a URI. The debug
 * server, which is not public, names the failing checks.
 */
function probe(res: ServerResponse, ok: boolean): void {
  const body = Buffer.from(JSON.stringify({ status: ok ? 'ok' : 'unhealthy' }));
  res.writeHead(ok ? 200 : 503, { 'Content-Type': 'application/json', 'Content-Length': body.byteLength, 'Cache-Control': 'no-cache' });
  res.end(body);
}

function isClientAbort(err: unknown, req: IncomingMessage): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  // A request whose body was read to the end is also `destroyed`; only an unfinished one was aborted.
  return (req.destroyed && !req.complete) || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error)?.message === 'aborted';
}

export interface RunningServer {
  server: http.Server;
  port: number;
  close(drainMs?: number): Promise<void>;
}

export interface TlsOptions {
  certificate: string;
  key: string;
  clientcas: string[];
  minimumtls: 'tls1.0' | 'tls1.1' | 'tls1.2' | 'tls1.3';
}

const TLS_VERSIONS: Record<TlsOptions['minimumtls'], SecureVersion> = { 'tls1.0': 'TLSv1', 'tls1.1': 'TLSv1.1', 'tls1.2': 'TLSv1.2', 'tls1.3': 'TLSv1.3' };

/** http.timeouts, in milliseconds; 0 turns one off. */
export interface ServerTimeouts {
  /** A request's headers must have arrived within this (slow-loris clients hold no socket longer). */
  header: number;
  /** A keep-alive connection with no request in progress is closed after this. */
  idle: number;
  /** The longest pause between two bytes of a request body; not a bound on the whole request. */
  read: number;
}

export const DEFAULT_TIMEOUTS: ServerTimeouts = { header: 30_000, idle: 65_000, read: 60_000 };

/**
 * A body is coming: node:http sends `Transfer-Encoding` or a non-zero
 * `Content-Length` for one (a request without either has none).
 */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * http.timeouts.read: while a request's body is arriving, a socket that
 * receives nothing for `ms` is cut. The socket's inactivity timer restarts
 * with every read; node:http emits 'timeout' on the request only while its
 * body is incomplete. Once it is complete, the response's listener keeps the
 * timer from cutting a request that is still being worked on (node:http
 * destroys a timed-out socket nobody listens for); node:http sets the
 * keep-alive timer after the response.
 */
function watchBody(req: IncomingMessage, res: ServerResponse, ms: number): void {
  const socket = req.socket;
  socket.setTimeout(ms);
  req.once('timeout', () => socket.destroy());
  res.on('timeout', () => {});
}

function createHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => unknown, tls: TlsOptions | undefined, timeouts: ServerTimeouts): http.Server {
  const options: http.ServerOptions = {
    keepAliveTimeout: timeouts.idle,
    // No bound on a whole request: a large push over a slow link must finish (http.timeouts.read bounds its pauses).
    requestTimeout: 0,
    headersTimeout: timeouts.header,
    // node:http looks for expired header timeouts on this interval (30 s by
    // default, which would let a slow client hold its socket that much longer).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(timeouts.header / 4) || 1000)),
    ServerResponse: RegistryResponse as typeof http.ServerResponse,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (timeouts.read > 0 && hasBody(req)) watchBody(req, res, timeouts.read);
    void handler(req, res);
  };
  return tls
    ? https.createServer(
        {
          ...options,
          cert: readFileSync(tls.certificate),
          key: readFileSync(tls.key),
          minVersion: TLS_VERSIONS[tls.minimumtls],
          // The handshake counts against the header timeout, as in Go's net/http (TLS's own default: 120 s).
          ...(timeouts.header > 0 ? { handshakeTimeout: timeouts.header } : {}),
          // http.tls.clientcas: mutual TLS, clients must present a certificate signed by one of them.
          ...(tls.clientcas.length > 0 ? { ca: tls.clientcas.map((f) => readFileSync(f)), requestCert: true, rejectUnauthorized: true } : {}),
        },
        onRequest,
      )
    : http.createServer(options, onRequest);
}

/**
 * Stops accepting, lets in-flight requests finish, cuts what is left after
 * `drainMs`: node:http's connections, and every other socket accepted (a
 * TLS handshake not finished, which node:http does not know of yet, would
 * otherwise hold the close until TLS's own two-minute handshake timeout).
 */
function drain(server: http.Server, stopAccepting: (done: () => void) => void, sockets: Set<net.Socket>, drainMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }, drainMs);
    timer.unref();
    // Keep-alive connections become idle between requests: close each as soon as it is.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const finish = () => {
      clearTimeout(timer);
      clearInterval(idle);
      resolve();
    };
    server.closeIdleConnections();
    stopAccepting(() => {
      const wait = () => (sockets.size === 0 ? finish() : setTimeout(wait, 20));
      wait();
    });
  });
}

export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
  host: string | undefined,
  port: number,
  tls?: TlsOptions,
  timeouts: ServerTimeouts = DEFAULT_TIMEOUTS,
): Promise<RunningServer> {
  const server = createHttpServer(handler, tls, timeouts);
  const bind = await bindAddress(host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => track(sockets, socket));
  return {
    server,
    port: address.port,
    close: (drainMs = 30_000) => drain(server, (done) => server.close(() => done()), sockets, drainMs),
  };
}

/**
 * An HTTP server that does not listen: connections accepted elsewhere (by
 * the main thread, see cli/threads.ts) are handed to it with `accept`.
 */
export function serveHandedConnections(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
  port: number,
  tls?: TlsOptions,
  timeouts: ServerTimeouts = DEFAULT_TIMEOUTS,
): RunningServer & { accept(socket: net.Socket): void } {
  const server = createHttpServer(handler, tls, timeouts);
  // node:http starts tracking connections (for idle-connection closing and
  // header timeouts) on 'listening'; this server never listens, so say it does.
  server.emit('listening');
  const sockets = new Set<net.Socket>();
  let accepting = true;
  return {
    server,
    port,
    accept(socket) {
      if (!accepting) {
        socket.destroy();
        return;
      }
      track(sockets, socket);
      // As a listening node:http server does on accept (and Go's net/http on every connection): without it
      // Nagle's algorithm holds a response's bytes back behind unacknowledged ones.
      socket.setNoDelay(true);
      server.emit('connection', socket);
      // Sockets accepted with pauseOnConnect start paused.
      socket.resume();
    },
    close: (drainMs = 30_000) =>
      drain(
        server,
        (done) => {
          accepting = false;
          done();
        },
        sockets,
        drainMs,
      ),
  };
}

/** Keeps `socket` in `sockets` until it closes. */
function track(sockets: Set<net.Socket>, socket: net.Socket): void {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
}
