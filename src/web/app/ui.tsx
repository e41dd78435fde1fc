/** Pieces every page uses: loading, error and empty states, copy buttons, times, sizes, pagination, dialogs. */
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiFailure } from './api';
import { Link } from './router';

/** Data from the API for a page: reloads when `deps` change; `reload` after a change. */
export function useApi<T>(load: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const lastTick = useRef(tick);
  useEffect(() => {
    let live = true;
    // New parameters (another page, another user) drop what was shown at once: nothing lingers for
    // someone who may not see it (after logging out). A reload after a change keeps it until the answer.
    if (lastTick.current === tick) setData(undefined);
    lastTick.current = tick;
    setLoading(true);
    setError(undefined);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        // What was shown for other parameters must not stay (a private page must not linger).
        setData(undefined);
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

export function Loading({ label = 'Loading' }: { label?: string }): JSX.Element {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}…
    </p>
  );
}

export function message(err: unknown): string {
  if (err instanceof ApiFailure) return err.message;
  return err instanceof Error ? err.message : String(err);
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }): JSX.Element {
  return (
    <div class="alert error" role="alert">
      <p>{message(error)}</p>
      {retry && (
        <button type="button" class="btn" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }): JSX.Element {
  return <div class="empty">{children}</div>;
}

/** Everything a page needs to show loading, error (a 404 as "not found") and data. */
export function Async<T>(props: { state: { data: T | undefined; error: unknown; loading: boolean; reload: () => void }; children: (data: T) => ComponentChildren; notFound?: ComponentChildren }): JSX.Element {
  const { data, error, loading, reload } = props.state;
  if (error) {
    if (error instanceof ApiFailure && error.status === 404 && props.notFound) return <>{props.notFound}</>;
    return <ErrorBox error={error} retry={reload} />;
  }
  if (loading && data === undefined) return <Loading />;
  if (data === undefined) return <Loading />;
  return <>{props.children(data)}</>;
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }): JSX.Element {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Clipboard API unavailable (plain HTTP on another host): select a hidden field instead.
      const ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.className = 'offscreen';
      document.body.appendChild(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return (
    <button type="button" class="btn small copy" onClick={copy} aria-label={`${label}: ${text.length > 80 ? text.slice(0, 80) + '…' : text}`}>
      {done ? 'Copied' : label}
      <span class="sr-only" aria-live="polite">
        {done ? ' copied to the clipboard' : ''}
      </span>
    </button>
  );
}

const rtf = typeof Intl !== 'undefined' && 'RelativeTimeFormat' in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

export function ago(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return 'never';
  const ms = typeof t === 'number' ? t : Date.parse(t);
  if (Number.isNaN(ms)) return '—';
  const s = Math.round((ms - Date.now()) / 1000);
  const abs = Math.abs(s);
  if (!rtf) return new Date(ms).toLocaleString();
  if (abs < 60) return rtf.format(s, 'second');
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  if (abs < 86400 * 30) return rtf.format(Math.round(s / 86400), 'day');
  if (abs < 86400 * 365) return rtf.format(Math.round(s / (86400 * 30)), 'month');
  return rtf.format(Math.round(s / (86400 * 365)), 'year');
}

export function Time({ t }: { t: string | number | null | undefined }): JSX.Element {
  if (t === null || t === undefined) return <span class="muted">never</span>;
  const d = new Date(typeof t === 'number' ? t : Date.parse(t));
  return (
    <time dateTime={d.toISOString()} title={d.toLocaleString()}>
      {ago(t)}
    </time>
  );
}

export function size(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const count = (n: number) => (n >= 1_000_000 ? `${(n / 1_000_000).toFixed(1)}M` : n >= 10_000 ? `${Math.round(n / 1000)}K` : n.toLocaleString());

export const shortDigest = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

/** Previous/next for positional lists (search, tags): `page` is 1-based, in the URL. */
export function Pager(props: { page: number; pageSize: number; total: number; hrefFor: (page: number) => string }): JSX.Element | null {
  const pages = Math.max(1, Math.ceil(props.total / props.pageSize));
  if (pages <= 1) return null;
  return (
    <nav class="pager" aria-label="Pagination">
      {props.page > 1 ? (
        <Link href={props.hrefFor(props.page - 1)} class="btn">
          ← Previous
        </Link>
      ) : (
        <span class="btn disabled" aria-hidden="true">
          ← Previous
        </span>
      )}
      <span>
        Page {props.page} of {pages}
      </span>
      {props.page < pages ? (
        <Link href={props.hrefFor(props.page + 1)} class="btn">
          Next →
        </Link>
      ) : (
        <span class="btn disabled" aria-hidden="true">
          Next →
        </span>
      )}
    </nav>
  );
}

/**
 * A list the API walks with `?last=` cursors: `last` is this page's cursor
 * (undefined for the first), `pager(next)` the buttons to the page before
 * and after, `reset()` back to the first (a filter changed).
 */
export function useCursorPages(label: string, words: { back: string; forward: string } = { back: '← Previous', forward: 'Next →' }) {
  const [pages, setPages] = useState<string[]>([]);
  return {
    last: pages[pages.length - 1],
    first: pages.length === 0,
    reset: () => setPages([]),
    pager: (next: string | null) => (
      <nav class="pager" aria-label={label}>
        {pages.length > 0 && (
          <button type="button" class="btn" onClick={() => setPages(pages.slice(0, -1))}>
            {words.back}
          </button>
        )}
        {next && (
          <button type="button" class="btn" onClick={() => setPages([...pages, next])}>
            {words.forward}
          </button>
        )}
      </nav>
    ),
  };
}

/** Newest first: the way back is newer. */
export const NEWER_OLDER = { back: '← Newer', forward: 'Older →' };

/** A modal confirmation (the native <dialog>: focus is trapped and Escape closes it). */
export function Confirm(props: {
  open: boolean;
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  /** The user must type this to confirm (a repository's name before deleting it). */
  typed?: string;
  busy?: boolean;
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
}): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) {
      setTyped('');
      d.showModal();
    } else if (!props.open && d.open) d.close();
  }, [props.open]);
  const ok = props.typed === undefined || typed === props.typed;
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="confirm-title" onCancel={(e) => (e.preventDefault(), props.onCancel())}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (ok) props.onConfirm();
        }}
      >
        <h2 id="confirm-title">{props.title}</h2>
        <div>{props.children}</div>
        {props.typed !== undefined && (
          <label class="field">
            <span>
              Type <strong>{props.typed}</strong> to confirm
            </span>
            <input value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} autoComplete="off" spellcheck={false} />
          </label>
        )}
        {props.error !== undefined && props.error !== null && <ErrorBox error={props.error} />}
        <div class="actions">
          <button type="button" class="btn" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit" class="btn danger" disabled={!ok || props.busy}>
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A form's submit state: busy while the action runs, the API's error shown, an optional success note. */
export function useAction(): { busy: boolean; error: unknown; done: string | null; run: (fn: () => Promise<string | void>) => Promise<boolean>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = async (fn: () => Promise<string | void>) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const note = await fn();
      setDone(note ?? null);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, done, run, clear: () => (setError(null), setDone(null)) };
}

export type Action = ReturnType<typeof useAction>;

/** A form whose submit runs `submit` through `action` (its busy state and error), without a page load. */
export function ActionForm({ action, submit, children, ...attrs }: { action: Action; submit: () => Promise<string | void>; children: ComponentChildren } & Omit<JSX.IntrinsicElements['form'], 'onSubmit' | 'action' | 'children'>): JSX.Element {
  return (
    <form
      {...attrs}
      onSubmit={(e) => {
        e.preventDefault();
        void action.run(submit);
      }}
    >
      {children}
    </form>
  );
}

export function ActionStatus({ action }: { action: { error: unknown; done: string | null } }): JSX.Element | null {
  if (action.error) return <ErrorBox error={action.error} />;
  if (action.done)
    return (
      <p class="alert ok" role="status">
        {action.done}
      </p>
    );
  return null;
}

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Berth` : 'Berth';
  }, [title]);
}

export function inputValue(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

/**
 * An invitation code for registration by invitation (auth.accounts.registration: invite):
 * administrators, or an organization's owners for it. The code is shown once.
 */
export function InviteForm({ organization }: { organization?: string }): JSX.Element {
  const [email, setEmail] = useState('');
  const [code, setCode] = useState<{ code: string; expiresAt: number } | null>(null);
  const action = useAction();
  return (
    <>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(async () => {
            setCode(await api<{ code: string; expiresAt: number }>('POST', 'invitations', { body: { email: email.trim() || undefined, organization } }));
            setEmail('');
          });
        }}
      >
        <label class="field">
          <span>
            Invite by email <span class="hint">(optional; when registration is by invitation)</span>
          </span>
          <input type="email" value={email} onInput={(e) => setEmail(inputValue(e))} />
        </label>
        <button type="submit" class="btn" disabled={action.busy}>
          Create invitation
        </button>
      </form>
      <ActionStatus action={action} />
      {code && (
        <div class="alert ok" role="status">
          <p>
            Invitation code (shown once; expires <Time t={code.expiresAt} />):
          </p>
          <div class="secret">
            <code id="new-invitation">{code.code}</code>
            <CopyButton text={code.code} label="Copy invitation code" />
          </div>
        </div>
      )}
    </>
  );
}

/**
 * Follow or stop following a repository or a namespace (what happens there is in the
 * follower's feed on Explore). Whether one follows comes from GET /me/following.
 */
export function FollowButton({ kind, target, me }: { kind: 'repository' | 'account'; target: string; me: string | null }): JSX.Element | null {
  const state = useApi(
    async () => (me ? (await api<{ items: { kind: string; target: string }[]; next: string | null }>('GET', 'me/following', { query: { n: 100 } })).items.some((f) => f.kind === kind && f.target === target) : false),
    [kind, target, me],
  );
  const action = useAction();
  if (!me || state.data === undefined) return null;
  const following = state.data;
  const path = kind === 'repository' ? `repositories/${target.split('/').map(encodeURIComponent).join('/')}/-/follow` : `namespaces/${encodeURIComponent(target)}/follow`;
  return (
    <>
      <button
        type="button"
        class="btn small"
        aria-pressed={following}
        disabled={action.busy}
        onClick={() => void action.run(async () => (await api(following ? 'DELETE' : 'PUT', path), state.reload()))}
      >
        {following ? 'Following' : 'Follow'}
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </>
  );
}
