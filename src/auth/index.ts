/**
 * Who is asking. With no auth configured everyone is anonymous and may do
 * everything (as registry:2 without auth). With htpasswd, every request
 * needs valid Basic credentials.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HtpasswdFile } from './htpasswd.js';

export { HtpasswdFile } from './htpasswd.js';

export interface Identity {
  /** The account name; undefined for anonymous. */
  name?: string;
}

/** Why a request was refused: for the access log only, never for the client (who must not learn which names exist). */
export type AuthFailure = 'no credentials' | 'malformed credentials' | 'unknown user' | 'wrong password';

export type AuthResult = { ok: true; identity: Identity } | { ok: false; challenge: string; reason: AuthFailure; user?: string };

export interface Authenticator {
  readonly kind: string;
  authenticate(headers: IncomingHttpHeaders): Promise<AuthResult>;
}

export const anonymous: Authenticator = {
  kind: 'none',
  async authenticate() {
    return { ok: true, identity: {} };
  },
};

export function parseBasic(header: string | undefined): { user: string; password: string } | null {
  if (!header) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export class HtpasswdAuthenticator implements Authenticator {
  readonly kind = 'htpasswd';
  private readonly challenge: string;

  constructor(
    readonly file: HtpasswdFile,
    realm: string,
  ) {
    this.challenge = `Basic realm=${JSON.stringify(realm)}`;
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<AuthResult> {
    const creds = parseBasic(headers.authorization);
    if (!creds) return { ok: false, challenge: this.challenge, reason: headers.authorization ? 'malformed credentials' : 'no credentials' };
    const outcome = await this.file.verify(creds.user, creds.password);
    if (outcome !== 'ok') return { ok: false, challenge: this.challenge, reason: outcome, user: creds.user };
    return { ok: true, identity: { name: creds.user } };
  }
}
