/**
 * Notification endpoint URLs may carry credentials (`user:pass@`, a token in
 * the query): logs show them without the user information and with every
 * query value replaced.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return '(not a URL)';
  }
  const userinfo = url.username !== '' || url.password !== '';
  url.username = '';
  url.password = '';
  const names = [...url.searchParams.keys()];
  const query = names.length > 0 ? `?${names.map((n) => `${encodeURIComponent(n)}=redacted`).join('&')}` : url.search === '?' ? '?' : '';
  return `${url.protocol}//${userinfo ? 'redacted@' : ''}${url.host}${url.pathname}${query}${url.hash}`;
}

/** Redacts every URL inside a message (an error may quote the URL it failed on). */
export function redactUrls(text: string): string {
  return text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (m) => redactUrl(m));
}
