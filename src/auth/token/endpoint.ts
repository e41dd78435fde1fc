/**
 * The token endpoint's protocol (Docker token specification token.md and
 * oauth.md), as a function from a small request to a response, so the HTTP
 * edge can mount it at `GET/POST <prefix>token`:
 *
 * - `GET` with Basic credentials or none (anonymous: only what the
 *   AccessGranter allows anonymous, public pulls), `scope` repeated,
 *   `service` (must be ours), `account` (must be the Basic user),
 *   `offline_token=true` (a refresh token, with credentials), `client_id`.
 *   `docker login` sends no scope: the credentials are still checked and
 *   the token has an empty access list.
 * - `POST` form `grant_type=password` (username, password, scope, service,
 *   client_id, access_type=offline) and `grant_type=refresh_token`
 *   (refresh_token, scope, service, client_id). containerd tries this first
 *   and falls back to GET on 400, 401, 404 and 405.
 *
 * Wrong credentials answer 401 `{"errors":[{"code":"UNAUTHORIZED",…}]}`,
 * which the docker CLI prints as "unauthorized: <message>", and never say
 * whether the user exists.
 */
import type { GrantedAccess, Principal } from '../../access/types.js';
import { parseBasic } from '../index.js';
import { quote } from './challenge.js';
import { formatScope, parseScopes } from './scope.js';
import type { TokenIssuer } from './tokens.js';
import type { AccessGranter, CredentialVerifier, RefreshTokens } from './types.js';

export interface TokenRequest {
  method: string;
  query: URLSearchParams;
  /** A POST's body as sent. */
  body?: string;
  contentType?: string;
  /** The Authorization header, if any. */
  authorization?: string;
  /** The caller's address (rate limiting of failed logins). */
  client: string;
  /** The request's id, for the audit log. */
  requestId?: string;
}

export interface TokenResponse {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

/** What happened, for the audit log: never a secret. */
export type TokenEvent =
  | { outcome: 'issued'; grant: 'anonymous' | 'basic' | 'password' | 'refresh_token'; principal: Principal; clientId: string; access: GrantedAccess[]; refreshToken: boolean }
  | { outcome: 'refused'; grant: 'basic' | 'password' | 'refresh_token'; username?: string; clientId: string; client: string };

export interface TokenEndpointOptions {
  /** Our service name: a request naming another is refused. */
  service: string;
  issuer: TokenIssuer;
  credentials: CredentialVerifier;
  granter: AccessGranter;
  /** Without it, no refresh tokens are issued or redeemed. */
  refreshTokens?: RefreshTokens;
  /** With the request it answers (its id and client address, for the audit log). */
  onEvent?: (event: TokenEvent, req: TokenRequest) => void;
  /**
   * Rewrites a repository name of a requested scope as the registry's edge
   * rewrites paths (accounts on: `ubuntu` is `library/ubuntu`), so the
   * token names what the registry will check.
   */
  canonicalName?: (name: string) => string;
}

const BAD_CREDENTIALS = 'incorrect username or password';

const JSON_HEADERS = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', Pragma: 'no-cache' };

type Grant = 'anonymous' | 'basic' | 'password' | 'refresh_token';

export class TokenEndpoint {
  constructor(private readonly opts: TokenEndpointOptions) {}

  async handle(req: TokenRequest): Promise<TokenResponse> {
    const method = req.method.toUpperCase();
    if (method === 'GET' || method === 'HEAD') return this.get(req);
    if (method === 'POST') return this.post(req);
    return { status: 405, headers: { ...JSON_HEADERS, Allow: 'GET, POST' }, body: errors('UNSUPPORTED', `method ${req.method} is not allowed on the token endpoint`) };
  }

  private async get(req: TokenRequest): Promise<TokenResponse> {
    const q = req.query;
    const clientId = q.get('client_id') ?? '';
    const checked = this.checkServiceAndScope(q.get('service'), q.getAll('scope'));
    if ('response' in checked) return checked.response;
    let principal: Principal = { kind: 'anonymous' };
    let grant: Grant = 'anonymous';
    if (req.authorization !== undefined && req.authorization !== '') {
      const creds = parseBasic(req.authorization);
      const account = q.get('account');
      if (creds && account !== null && account !== '' && account !== creds.user) {
        return badRequest('the account parameter does not match the user of the credentials');
      }
      const found = creds ? await this.opts.credentials.verify(creds.user, creds.password, req.client, req.requestId) : null;
      if (!found) return this.refused(req, 'basic', clientId, creds?.user, false);
      principal = found;
      grant = 'basic';
    }
    const offline = q.get('offline_token') === 'true' && grant === 'basic';
    return this.answer(req, principal, grant, checked.access, clientId, offline, false);
  }

  private async post(req: TokenRequest): Promise<TokenResponse> {
    if (!/^application\/x-www-form-urlencoded\b/i.test(req.contentType ?? '')) {
      return badRequest('the token endpoint takes a form (application/x-www-form-urlencoded)', 'invalid_request');
    }
    const form = new URLSearchParams(req.body ?? '');
    const clientId = form.get('client_id') ?? '';
    const checked = this.checkServiceAndScope(form.get('service'), form.getAll('scope'), true);
    if ('response' in checked) return checked.response;
    const grantType = form.get('grant_type');
    if (grantType === 'password') {
      const username = form.get('username');
      const password = form.get('password');
      if (!username || password === null) return badRequest('grant_type=password needs username and password', 'invalid_request', true);
      const principal = await this.opts.credentials.verify(username, password, req.client, req.requestId);
      if (!principal) return this.refused(req, 'password', clientId, username, true);
      return this.answer(req, principal, 'password', checked.access, clientId, form.get('access_type') === 'offline', true);
    }
    if (grantType === 'refresh_token') {
      const token = form.get('refresh_token');
      if (!token) return badRequest('grant_type=refresh_token needs refresh_token', 'invalid_request', true);
      const principal = this.opts.refreshTokens ? await this.opts.refreshTokens.redeem(token) : null;
      if (!principal) return this.refused(req, 'refresh_token', clientId, undefined, true, 'the refresh token is not valid');
      return this.answer(req, principal, 'refresh_token', checked.access, clientId, false, true);
    }
    return badRequest(grantType ? `unsupported grant_type ${JSON.stringify(grantType.slice(0, 50))}` : 'grant_type is required', grantType ? 'unsupported_grant_type' : 'invalid_request', true);
  }

  private checkServiceAndScope(service: string | null, scopes: string[], oauth = false): { access: GrantedAccess[] } | { response: TokenResponse } {
    if (service !== null && service !== '' && service !== this.opts.service) {
      return { response: badRequest(`unknown service ${JSON.stringify(service.slice(0, 100))}: this token server serves ${JSON.stringify(this.opts.service)}`, 'invalid_request', oauth) };
    }
    const parsed = parseScopes(scopes);
    if ('invalid' in parsed) return { response: badRequest(`invalid scope ${JSON.stringify(parsed.invalid.slice(0, 200))}`, 'invalid_scope', oauth) };
    const canonical = this.opts.canonicalName;
    if (!canonical) return { access: parsed.access };
    return { access: parsed.access.map((a) => (a.type === 'repository' ? { ...a, name: canonical(a.name) } : a)) };
  }

  private refused(req: TokenRequest, grant: 'basic' | 'password' | 'refresh_token', clientId: string, username: string | undefined, oauth: boolean, message = BAD_CREDENTIALS): TokenResponse {
    this.opts.onEvent?.({ outcome: 'refused', grant, username, clientId, client: req.client }, req);
    const body: Record<string, unknown> = errors('UNAUTHORIZED', message);
    if (oauth) Object.assign(body, { error: 'invalid_grant', error_description: message });
    return { status: 401, headers: { ...JSON_HEADERS, 'WWW-Authenticate': `Basic realm=${quote(this.opts.service)}` }, body };
  }

  private async answer(req: TokenRequest, principal: Principal, grant: Grant, requested: GrantedAccess[], clientId: string, offline: boolean, oauth: boolean): Promise<TokenResponse> {
    const access = requested.length === 0 ? [] : (await this.opts.granter.grant(principal, requested)).filter((a) => a.actions.length > 0);
    const issued = await this.opts.issuer.issue(principal, access);
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt.toISOString(),
    };
    if (oauth) body.scope = access.map(formatScope).join(' ');
    let refreshToken = false;
    if (offline && this.opts.refreshTokens && principal.kind !== 'anonymous') {
      body.refresh_token = await this.opts.refreshTokens.issue(principal, clientId);
      refreshToken = true;
    }
    this.opts.onEvent?.({ outcome: 'issued', grant, principal, clientId, access, refreshToken }, req);
    return { status: 200, headers: { ...JSON_HEADERS }, body };
  }
}

function errors(code: string, message: string): Record<string, unknown> {
  return { errors: [{ code, message }] };
}

/** 400: the registry's error shape, plus RFC 6749 5.2's `error` on the OAuth2 POST. */
function badRequest(message: string, oauthError = 'invalid_request', oauth = false): TokenResponse {
  const body = errors('UNSUPPORTED', message);
  if (oauth) Object.assign(body, { error: oauthError, error_description: message });
  return { status: 400, headers: { ...JSON_HEADERS }, body };
}
