/** How a URL is redacted: what replaces a secret, and what stands for an unparsable URL. */
export interface UrlRedaction {
  mask: string;
  /** Keep the user name and mask only the password (else the whole user part becomes `MASK@`). */
  keepUser: boolean;
  invalid: string;
}

/** For logs: notification endpoint URLs may carry credentials (`user:pass@`, a token in the query). */
const LOG_REDACTION: UrlRedaction = { mask: 'redacted', keepUser: false, invalid: '(not a URL)' };

/**
 * A URL without its secrets: the user information (or with `keepUser` just
 * its password) and every query value are replaced by the mask.
 */
export function redactUrl(raw: string, how: UrlRedaction = LOG_REDACTION): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return how.invalid;
  }
  let userinfo = '';
  if (url.username !== '' || url.password !== '') {
    userinfo = how.keepUser ? `${url.username}${url.password !== '' ? `:${how.mask}` : ''}@` : `${how.mask}@`;
  }
  const names = [...url.searchParams.keys()];
  // url.search is '' for a bare `?` too, so an empty query is simply left out.
  const query = names.length > 0 ? `?${names.map((n) => `${encodeURIComponent(n)}=${how.mask}`).join('&')}` : '';
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}${url.hash}`;
}

/** Redacts every URL inside a message (an error may quote the URL it failed on). */
export function redactUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (m) => redactUrl(m));
}
