/**
 * The `WWW-Authenticate` challenge of a registry with token auth (Docker
 * token specification, token.md; RFC 6750 section 3):
 * `Bearer realm="…",service="…",scope="repository:NAME:pull,push"`, with
 * `error="insufficient_scope"` when a token was sent but does not cover the
 * request, or `error="invalid_token"` when it could not be verified.
 */
import type { GrantedAccess } from '../../access/types.js';
import { formatScope } from './scope.js';

/**
 * An RFC 7230 quoted-string: `"` and `\` escaped with a backslash. Control
 * characters (CR and LF among them) cannot be sent in a header at all and
 * are dropped, so nothing from a request can split the header.
 */
export function quote(value: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

export interface ChallengeOptions {
  realm: string;
  service: string;
  /** What the request needs; several resources are joined by a space in one `scope` parameter. */
  scope?: readonly GrantedAccess[];
  error?: 'invalid_token' | 'insufficient_scope';
}

export function bearerChallenge(opts: ChallengeOptions): string {
  let out = `Bearer realm=${quote(opts.realm)},service=${quote(opts.service)}`;
  const scopes = (opts.scope ?? []).filter((s) => s.actions.length > 0).map(formatScope);
  if (scopes.length > 0) out += `,scope=${quote(scopes.join(' '))}`;
  if (opts.error) out += `,error=${quote(opts.error)}`;
  return out;
}

/** The realm when none is configured: the token endpoint Berth serves itself, `<scheme>://<host><prefix>token`. */
export function defaultRealm(scheme: 'http' | 'https', host: string, prefix: string): string {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return `${scheme}://${host}${p.startsWith('/') ? p : `/${p}`}token`;
}
