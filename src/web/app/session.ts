/**
 * Who is using the UI: the session (cookie + CSRF token) and /me. The
 * cookie is HttpOnly, so after a reload the CSRF token comes back from
 * GET /sessions/current. `accounts: false` when the server runs without
 * accounts (the Hub's API answers 404): nobody logs in then. Without
 * accounts and without auth (OPEN), the Hub's reading operations are
 * still served (everything public), so repositories can be looked at.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiFailure, setCsrf, type Me, type Session } from './api';

export interface SessionState {
  loaded: boolean;
  accounts: boolean;
  me: Me | null;
}

let state: SessionState = { loaded: false, accounts: true, me: null };
const listeners = new Set<(s: SessionState) => void>();

function set(next: SessionState): void {
  state = next;
  for (const l of listeners) l(state);
}

export function useSession(): SessionState {
  const [s, setS] = useState(state);
  useEffect(() => {
    listeners.add(setS);
    setS(state);
    return () => void listeners.delete(setS);
  }, []);
  return s;
}

export function sessionNow(): SessionState {
  return state;
}

async function loadMe(): Promise<void> {
  const me = await api<Me>('GET', 'me');
  set({ loaded: true, accounts: true, me });
}

/** What the server runs with (the shell's meta tag): `on` (accounts), `open` (no auth: reading only) or `off` (no Hub API). */
const HUB = document.querySelector('meta[name="berth-accounts"]')?.getAttribute('content') ?? 'on';
/** No accounts, no auth: the Hub's reading operations are served to anyone. */
export const OPEN = HUB === 'open';

export async function restoreSession(): Promise<void> {
  if (HUB === 'off' || HUB === 'open') {
    set({ loaded: true, accounts: false, me: null });
    return;
  }
  try {
    const s = await api<Session>('GET', 'sessions/current');
    setCsrf(s.csrfToken);
    await loadMe();
  } catch (err) {
    const accounts = !(err instanceof ApiFailure && err.status === 404);
    set({ loaded: true, accounts, me: null });
  }
}

export async function logIn(username: string, password: string): Promise<void> {
  const s = await api<Session>('POST', 'sessions', { body: { username, password } });
  setCsrf(s.csrfToken);
  await loadMe();
}

export async function logOut(): Promise<void> {
  try {
    await api('DELETE', 'sessions/current');
  } finally {
    setCsrf(null);
    set({ loaded: true, accounts: true, me: null });
  }
}

export async function refreshMe(): Promise<void> {
  await loadMe();
}
