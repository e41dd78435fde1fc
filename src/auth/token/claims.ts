/**
 * The checks every registry token gets once its signature holds (Docker
 * token specification, jwt.md): issuer, audience (the service), expiry and
 * not-before with a leeway for clock skew, and a well-formed access list.
 */
import type { GrantedAccess } from '../../access/types.js';
import type { JwtClaims } from './jwt.js';

export type ClaimFailure = 'issuer' | 'audience' | 'expired' | 'not yet valid' | 'no expiry';

export interface ClaimExpectations {
  issuer: string;
  audience: string;
  leewaySeconds: number;
  /** ms since the epoch */
  now: number;
}

export function checkClaims(claims: JwtClaims, want: ClaimExpectations): ClaimFailure | null {
  if (claims.iss !== want.issuer) return 'issuer';
  const aud = claims.aud;
  if (!(aud === want.audience || (Array.isArray(aud) && aud.includes(want.audience)))) return 'audience';
  const now = want.now / 1000;
  // A token without exp would never expire: refused (distribution reads a missing exp as 1970).
  if (claims.exp === undefined) return 'no expiry';
  // RFC 7519 4.1.4: valid only before exp.
  if (now >= claims.exp + want.leewaySeconds) return 'expired';
  if (claims.nbf !== undefined && now < claims.nbf - want.leewaySeconds) return 'not yet valid';
  return null;
}

/** The token's access list; `null` (as some servers write for none) is empty. */
export function accessOf(claims: JwtClaims): GrantedAccess[] {
  return (claims.access ?? []).map((a) => ({ type: a.type, name: a.name, actions: [...a.actions] }));
}

/** When a verified token stops being valid (ms), leeway included. */
export function validUntil(claims: JwtClaims, leewaySeconds: number): number {
  return (claims.exp! + leewaySeconds) * 1000;
}
