/** Home (explore, with search as you type) and the search results page. */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, qs, type ActivityEntry, type Counted, type Page, type SearchResult } from '../api';
import { useSession } from '../session';
import { ACTIONS } from './repository';
import { href, Link, navigate, repoHref, useLocation } from '../router';
import { Async, count, Empty, ErrorBox, Loading, Pager, Time, useApi, useTitle } from '../ui';

const search = (query: Record<string, string | number | undefined>) => api<Counted<SearchResult>>('GET', 'search', { query });

function Badge({ children, kind }: { children: string; kind: string }): JSX.Element {
  return <span class={`badge ${kind}`}>{children}</span>;
}

export function RepoCard({ r }: { r: SearchResult }): JSX.Element {
  return (
    <li class="card repo-card">
      <h3>
        <Link href={repoHref(r.name)}>
          <span class="muted">{r.namespace}/</span>
          {r.short_name}
        </Link>{' '}
        {r.is_official && <Badge kind="official">Official</Badge>}
      </h3>
      <p class="desc">{r.description || <span class="muted">No description</span>}</p>
      <p class="meta">
        <span title="stars">★ {count(r.star_count)}</span>
        <span title="pulls">↓ {count(r.pull_count)}</span>
        <span>
          Updated <Time t={r.last_updated} />
        </span>
      </p>
    </li>
  );
}

function Shelf({ title, query, more }: { title: string; query: Record<string, string | number | undefined>; more: string }): JSX.Element {
  const state = useApi(() => search({ ...query, n: 6 }), []);
  return (
    <section class="shelf" aria-labelledby={`shelf-${more}`}>
      <div class="shelf-head">
        <h2 id={`shelf-${more}`}>{title}</h2>
        <Link href={href(`/search${qs({ ...query, q: '' })}`)}>See all</Link>
      </div>
      <Async state={state}>
        {(d) =>
          d.items.length === 0 ? (
            <Empty>Nothing here yet.</Empty>
          ) : (
            <ul class="cards">
              {d.items.map((r) => (
                <RepoCard key={r.name} r={r} />
              ))}
            </ul>
          )
        }
      </Async>
    </section>
  );
}

/** The search box that answers as you type (debounced), with a list of the best matches. */
function LiveSearch(): JSX.Element {
  const [q, setQ] = useState('');
  const [results, setResults] = useState<Counted<SearchResult> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  useEffect(() => {
    const term = q.trim();
    if (term === '') {
      setResults(null);
      return;
    }
    const mine = ++seq.current;
    const timer = setTimeout(() => {
      setBusy(true);
      search({ q: term, n: 8 }).then(
        (r) => {
          if (mine !== seq.current) return;
          setResults(r);
          setError(null);
          setBusy(false);
        },
        (e: unknown) => {
          if (mine !== seq.current) return;
          setError(e);
          setBusy(false);
        },
      );
    }, 150);
    return () => clearTimeout(timer);
  }, [q]);
  return (
    <div class="live-search">
      <form
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href(`/search?q=${encodeURIComponent(q.trim())}`));
        }}
      >
        <label for="explore-q" class="sr-only">
          Search repositories
        </label>
        <input
          id="explore-q"
          class="big-search"
          type="search"
          placeholder="Search repositories: names, descriptions, READMEs"
          value={q}
          autoFocus
          autoComplete="off"
          aria-controls="live-results"
          onInput={(e) => setQ((e.target as HTMLInputElement).value)}
        />
        <button type="submit" class="btn primary">
          Search
        </button>
      </form>
      <div id="live-results" aria-live="polite">
        {error ? <ErrorBox error={error} /> : null}
        {busy && !results ? <Loading label="Searching" /> : null}
        {results &&
          (results.items.length === 0 ? (
            <Empty>No repository matches “{q.trim()}”.</Empty>
          ) : (
            <ul class="live-list">
              {results.items.map((r) => (
                <li key={r.name}>
                  <Link href={repoHref(r.name)}>
                    <strong>{r.name}</strong>
                  </Link>
                  {r.is_official && <Badge kind="official">Official</Badge>}
                  <span class="muted"> {r.description}</span>
                </li>
              ))}
              {results.count > results.items.length && (
                <li>
                  <Link href={href(`/search?q=${encodeURIComponent(q.trim())}`)}>All {results.count} results →</Link>
                </li>
              )}
            </ul>
          ))}
      </div>
    </div>
  );
}

/** What the user follows, newest first; shown only when there is something. */
function Feed(): JSX.Element | null {
  const state = useApi(() => api<Page<ActivityEntry>>('GET', 'me/feed', { query: { n: 8 } }), []);
  if (!state.data || state.data.items.length === 0) return null;
  return (
    <section class="shelf" aria-labelledby="shelf-feed">
      <div class="shelf-head">
        <h2 id="shelf-feed">Your feed</h2>
      </div>
      <ol class="activity">
        {state.data.items.map((e) => (
          <li key={e.id}>
            <strong>{e.actor ?? 'someone'}</strong> {ACTIONS[e.action] ?? e.action}
            {e.tag ? (
              <>
                {' '}
                <code>{e.tag}</code>
              </>
            ) : null}{' '}
            {e.repository && (
              <>
                in <Link href={repoHref(e.repository)}>{e.repository}</Link>
              </>
            )}{' '}
            <span class="muted">
              <Time t={e.at} />
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}

export function HomePage(): JSX.Element {
  useTitle('Explore');
  const session = useSession();
  return (
    <>
      <section class="hero">
        <h1>Explore the registry</h1>
        <LiveSearch />
      </section>
      {session.me?.kind === 'user' && <Feed />}
      <Shelf title="Official images" query={{ official: 'true', sort: 'pulls' }} more="official" />
      <Shelf title="Most pulled" query={{ sort: 'pulls' }} more="pulls" />
      <Shelf title="Most starred" query={{ sort: 'stars' }} more="stars" />
      <Shelf title="Recently updated" query={{ sort: 'updated' }} more="updated" />
    </>
  );
}

const PAGE_SIZE = 25;
const SORTS = [
  ['relevance', 'Best match'],
  ['stars', 'Most stars'],
  ['pulls', 'Most pulls'],
  ['updated', 'Recently updated'],
] as const;

export function SearchPage(): JSX.Element {
  const { query } = useLocation();
  const q = query.get('q') ?? '';
  const sort = query.get('sort') ?? 'relevance';
  const official = query.get('official') ?? '';
  const os = query.get('os') ?? '';
  const architecture = query.get('architecture') ?? '';
  const page = Math.max(1, Number(query.get('page') ?? '1') || 1);
  useTitle(q ? `Search: ${q}` : 'Search');
  const state = useApi(
    () => search({ q, sort, official: official || undefined, os: os || undefined, architecture: architecture || undefined, n: PAGE_SIZE, last: page > 1 ? (page - 1) * PAGE_SIZE : undefined }),
    [q, sort, official, os, architecture, page],
  );
  const urlWith = (changes: Record<string, string | number | undefined>) =>
    href(`/search${qs({ q, sort: sort === 'relevance' ? undefined : sort, official: official || undefined, os: os || undefined, architecture: architecture || undefined, ...changes })}`);
  const [draft, setDraft] = useState(q);
  useEffect(() => setDraft(q), [q]);
  return (
    <section>
      <h1>{q ? <>Results for “{q}”</> : 'All repositories'}</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.target as HTMLFormElement);
          navigate(
            href(
              `/search${qs({
                q: String(f.get('q') ?? ''),
                sort: f.get('sort') === 'relevance' ? undefined : String(f.get('sort')),
                official: f.get('official') ? 'true' : undefined,
                os: String(f.get('os') ?? '') || undefined,
                architecture: String(f.get('architecture') ?? '') || undefined,
              })}`,
            ),
          );
        }}
      >
        <label class="field grow">
          <span>Search</span>
          <input name="q" type="search" value={draft} onInput={(e) => setDraft((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Sort by</span>
          <select name="sort" value={sort}>
            {SORTS.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
        <label class="field">
          <span>OS</span>
          <input name="os" value={os} placeholder="linux" size={8} />
        </label>
        <label class="field">
          <span>Architecture</span>
          <input name="architecture" value={architecture} placeholder="amd64" size={8} />
        </label>
        <label class="check">
          <input type="checkbox" name="official" value="true" checked={official === 'true'} /> Official only
        </label>
        <button type="submit" class="btn primary">
          Apply
        </button>
      </form>
      <Async state={state}>
        {(d) => (
          <>
            <p class="muted" role="status">
              {d.count === 1 ? '1 repository' : `${d.count.toLocaleString()} repositories`}
            </p>
            {d.items.length === 0 ? (
              <Empty>
                No repository matches. {q && <Link href={urlWith({ q: '' })}>List all repositories</Link>}
              </Empty>
            ) : (
              <ul class="results">
                {d.items.map((r) => (
                  <RepoCard key={r.name} r={r} />
                ))}
              </ul>
            )}
            <Pager page={page} pageSize={PAGE_SIZE} total={d.count} hrefFor={(p) => urlWith({ page: p > 1 ? p : undefined })} />
          </>
        )}
      </Async>
    </section>
  );
}
