/**
 * The token endpoint Berth serves with accounts on (Docker token
 * specification): `GET` and `POST <prefix>token` (src/auth/token/endpoint.ts
 * holds the protocol), and the signing keys for registries that trust
 * Berth's tokens: `<prefix>token/jwks.json` (distribution 3's `jwks`) and
 * `<prefix>token/certs.pem` (distribution's `rootcertbundle`). These routes
 * skip the edge's authentication: the endpoint checks its own credentials.
 */
import type { Logger } from 'pino';
import type { KeyRing, TokenEndpoint, TokenEvent, TokenRequest } from '../auth/token/index.js';
import type { CredentialQueries } from '../metadata/credentials.js';
import { RegistryError } from '../registry/index.js';
import { clientAddress, principalName } from './authenticate.js';
import type { Ctx } from './context.js';
import type { Match } from './v2/index.js';

/** A token request's form is a few hundred bytes; anything far larger is not one. */
const MAX_FORM_BYTES = 64 * 1024;

export interface TokenRoutes {
  endpoint: TokenEndpoint;
  keys: KeyRing;
}

export function createTokenRoutes(routes: TokenRoutes): (method: string, path: string) => Match | null {
  const { endpoint, keys } = routes;
  const methodNotAllowed = (route: string, allowed: string): Match => ({
    route,
    public: true,
    run: async () => {
      throw new RegistryError('UNSUPPORTED', `method not allowed; this endpoint supports ${allowed}`, undefined, { headers: { Allow: allowed } });
    },
  });
  return (method, path) => {
    if (path === 'token' || path === 'token/') {
      return {
        route: 'token',
        public: true,
        run: async (ctx) => {
          const body = method === 'POST' ? await readForm(ctx) : undefined;
          const answer = await endpoint.handle({
            method,
            query: ctx.query,
            body,
            contentType: ctx.req.headers['content-type'],
            authorization: ctx.req.headers.authorization,
            client: clientAddress(ctx.req),
            requestId: ctx.id,
          });
          const data = Buffer.from(JSON.stringify(answer.body));
          ctx.res.writeHead(answer.status, { ...answer.headers, 'Content-Length': data.byteLength });
          ctx.res.end(method === 'HEAD' ? undefined : data);
        },
      };
    }
    if (path === 'token/jwks.json' || path === 'token/certs.pem') {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed('token-keys', 'GET, HEAD');
      return {
        route: 'token-keys',
        public: true,
        run: async (ctx) => {
          // A rotation made by another replica shows here within the key ring's reload interval.
          await keys.fresh();
          const pem = path.endsWith('.pem');
          const data = Buffer.from(pem ? keys.certificateBundle() : JSON.stringify(keys.jwks()));
          ctx.res.writeHead(200, {
            'Content-Type': pem ? 'application/x-pem-file' : 'application/jwk-set+json',
            'Content-Length': data.byteLength,
            'Cache-Control': 'max-age=60',
          });
          ctx.res.end(method === 'HEAD' ? undefined : data);
        },
      };
    }
    return null;
  };
}

async function readForm(ctx: Ctx): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).byteLength;
    ctx.bytesIn += (chunk as Buffer).byteLength;
    if (size > MAX_FORM_BYTES) throw new RegistryError('UNSUPPORTED', `a token request's form is at most ${MAX_FORM_BYTES} bytes`, undefined, { status: 413 });
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

/**
 * The token endpoint's events in the Hub's audit log, with the request id:
 * a session begun (a refresh token issued, what `docker login` keeps) and a
 * refused refresh token. Logins and failed logins with a password, a
 * personal access token or a robot secret are written by the Hub's
 * CredentialVerifier itself; access tokens, issued every few minutes to
 * every client, are not audited one by one.
 */
export function auditTokenEvents(queries: CredentialQueries, log: Logger): (event: TokenEvent, req: TokenRequest) => void {
  return (event, req) => {
    const requestId = req.requestId ?? null;
    let write: Promise<void> | undefined;
    if (event.outcome === 'issued' && event.refreshToken) {
      const p = event.principal;
      write = queries.appendAudit({
        actor: principalName(p) ?? null,
        actorId: p.kind === 'user' || p.kind === 'robot' ? p.id : null,
        action: 'session.create',
        target: principalName(p) ?? null,
        requestId,
        client: req.client || null,
        detail: { grant: event.grant, clientId: event.clientId.slice(0, 200) },
      });
    } else if (event.outcome === 'refused' && event.grant === 'refresh_token') {
      write = queries.appendAudit({
        actor: null,
        actorId: null,
        action: 'login.failed',
        target: null,
        requestId,
        client: event.client,
        detail: { with: 'refresh token', clientId: event.clientId.slice(0, 200) },
      });
    }
    write?.catch((err: unknown) => log.error({ err, reqId: requestId }, 'writing the audit log failed'));
  };
}
