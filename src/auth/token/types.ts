/**
 * The interfaces between the token service (this folder) and the Hub core
 * (src/hub/), as the Hub contract fixes them. The Hub implements them; the
 * token endpoint and the token verifier only call them.
 */
import type { GrantedAccess, Principal } from '../../access/types.js';

/** Checks a username and secret (a password, a personal access token, or a robot secret) sent to the token endpoint or as Basic auth. */
export interface CredentialVerifier {
  /**
   * The principal, or null when the credentials are wrong (never says which
   * part). `client` is the caller's address, for rate limiting; `requestId`
   * the request's, for the audit log.
   */
  verify(username: string, secret: string, client: string, requestId?: string): Promise<Principal | null>;
}

/** Decides what of a requested access list a principal gets: the intersection of what was asked and what is allowed. */
export interface AccessGranter {
  grant(principal: Principal, requested: GrantedAccess[]): Promise<GrantedAccess[]>;
}

/** Long-lived refresh tokens (docker login's offline_token, OAuth2 refresh_token grant). */
export interface RefreshTokens {
  issue(principal: Principal, clientId: string): Promise<string>;
  /** The principal the refresh token was issued to, or null if unknown, expired or revoked (or its account or PAT is). */
  redeem(token: string): Promise<Principal | null>;
}

/** Whether the credential behind an issued access token still holds (account not deleted, PAT or robot not revoked or expired). */
export interface CredentialStatus {
  stillValid(principal: Principal): Promise<boolean>;
}
