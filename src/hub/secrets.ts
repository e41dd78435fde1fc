/**
 * High-entropy secrets (personal access tokens, robot secrets, refresh
 * tokens, invitation codes): 32 random bytes, base64url, behind a prefix that
 * says what they are (and lets secret scanners find leaked ones). Stored as
 * SHA-256 hex and looked up by it: a database dump holds no usable secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const PAT_PREFIX = 'bpat_';
export const ROBOT_PREFIX = 'brob_';
export const REFRESH_PREFIX = 'bref_';
export const INVITATION_PREFIX = 'binv_';

export function newSecret(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Equal strings, compared in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}
