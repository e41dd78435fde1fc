/** The token service (Docker token specification) and external token validation. */
export type { AccessGranter, CredentialStatus, CredentialVerifier, RefreshTokens } from './types.js';
export { KeyRing, type SigningKey, type KeyRingOptions } from './keys.js';
export { TokenIssuer, TokenVerifier, berthClaim, holderOf, type BerthClaim, type IssuedToken, type TokenCheck, type VerifyFailure } from './tokens.js';
export { TokenEndpoint, type TokenRequest, type TokenResponse, type TokenEvent, type TokenEndpointOptions } from './endpoint.js';
export { ExternalTokenValidator, type TokenAuthConfig, type ExternalCheck } from './external.js';
export { bearerChallenge, defaultRealm, quote } from './challenge.js';
export { parseScope, parseScopes, formatScope, allows } from './scope.js';
export { jwkThumbprint, libtrustKeyId, publicJwk } from './jwk.js';
