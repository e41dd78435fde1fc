/**
 * The query string as the access log shows it: as sent, except the values
 * of parameters that carry secrets. distribution's `_state` is a signed
 * upload state; pre-signed URLs and token endpoints carry signatures,
 * tokens and passwords in their queries.
 */

/** Names (case-insensitive) whose values are never logged. */
const SECRET_NAME = /^(?:_state|sig|key|auth|code|jwt|session|sessionid)$|token|passw|pwd|secret|signature|credential|api[-_]?key/i;

/** The longest query the log keeps: a query can fill the request's header limit. */
const MAX_LOGGED = 2048;

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

export function isSecretParam(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** `rawQuery` (without the `?`), each secret parameter's value replaced by REDACTED. */
export function redactQuery(rawQuery: string): string {
  let out = '';
  for (const pair of rawQuery.split('&')) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    const shown = eq !== -1 && isSecretParam(decodeName(name)) ? `${name}=REDACTED` : pair;
    out = out === '' ? shown : `${out}&${shown}`;
    if (out.length > MAX_LOGGED) return `${out.slice(0, MAX_LOGGED)}…`;
  }
  return out;
}
