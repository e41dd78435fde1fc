/**
 * Client-side routing: bookmarkable URLs under the prefix, history.pushState
 * for links inside the UI, and the route table (docs/web.md lists it).
 * Repository pages put the name first and their tab after a `-` segment,
 * as the API does: `/r/acme/api/server/-/tags/v1`. No name component can
 * be `-`, so a repository whose name ends in `tags` is never mistaken for
 * a tab.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { PREFIX } from './api';

export type Route =
  | { page: 'home' }
  | { page: 'search' }
  | { page: 'repo'; name: string; tab: 'overview' | 'tags' | 'activity' | 'settings' }
  | { page: 'tag'; name: string; tag: string }
  | { page: 'user'; name: string }
  | { page: 'org'; name: string }
  | { page: 'login' }
  | { page: 'register' }
  | { page: 'account' }
  | { page: 'tokens' }
  | { page: 'admin' }
  | { page: 'notfound' };

const decode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** The route for a path (without the prefix). */
export function parseRoute(path: string): Route {
  const p = path.replace(/\/+$/, '');
  if (p === '' || p === '/explore') return { page: 'home' };
  if (p === '/search') return { page: 'search' };
  if (p === '/login') return { page: 'login' };
  if (p === '/register') return { page: 'register' };
  if (p === '/account') return { page: 'account' };
  if (p === '/account/tokens') return { page: 'tokens' };
  if (p === '/admin') return { page: 'admin' };
  let m = /^\/u\/([^/]+)$/.exec(p);
  if (m) return { page: 'user', name: decode(m[1]!) };
  m = /^\/orgs\/([^/]+)$/.exec(p);
  if (m) return { page: 'org', name: decode(m[1]!) };
  m = /^\/r\/(.+?)(?:\/-\/(.*))?$/.exec(p);
  if (m) {
    const name = m[1]!.split('/').map(decode).join('/');
    // One component is a name too (`hello`; with accounts the API reads it as `library/hello`).
    if (name.split('/').some((c) => c === '' || c === '-')) return { page: 'notfound' };
    const rest = m[2];
    if (rest === undefined) return { page: 'repo', name, tab: 'overview' };
    if (rest === 'tags' || rest === 'activity' || rest === 'settings') return { page: 'repo', name, tab: rest };
    const t = /^tags\/([^/]+)$/.exec(rest);
    if (t) return { page: 'tag', name, tag: decode(t[1]!) };
  }
  return { page: 'notfound' };
}

/** A URL of the UI: path (starting with /) and query, under the prefix. */
export const href = (path: string) => PREFIX.replace(/\/$/, '') + path;
export const repoHref = (name: string, rest = '') => href(`/r/${name.split('/').map(encodeURIComponent).join('/')}${rest}`);
export const tagHref = (name: string, tag: string) => repoHref(name, `/-/tags/${encodeURIComponent(tag)}`);

type Listener = () => void;
const listeners = new Set<Listener>();

function current(): { path: string; query: URLSearchParams } {
  const base = PREFIX.replace(/\/$/, '');
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) || '/' : location.pathname;
  return { path, query: new URLSearchParams(location.search) };
}

export function navigate(url: string, replace = false): void {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  if (!replace) window.scrollTo(0, 0);
  for (const l of listeners) l();
}

window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

/** The current location; re-renders on every navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const l = () => setLoc(current());
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return loc;
}

/** An in-app link: a real <a href> (open in a new tab works), navigated without a reload. */
export function Link(props: { href: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined; title?: string }): JSX.Element {
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.href);
  };
  return (
    <a href={props.href} class={props.class} onClick={onClick} aria-current={props['aria-current']} title={props.title}>
      {props.children}
    </a>
  );
}
