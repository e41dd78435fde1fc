/** The web UI's entry: the layout, the theme, the session, and the page for the URL. */
import './styles.css';
import type { ComponentType, JSX } from 'preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { href, Link, navigate, parseRoute, useLocation, type Route } from './router';
import { logOut, OPEN, restoreSession, sessionNow, useSession } from './session';
import { ErrorBox, Loading, useTitle } from './ui';
import { HomePage, SearchPage } from './pages/explore';
import { RepositoryPage, TagPage } from './pages/repository';

// ---- theme: the system's unless the user picked one (kept in localStorage) ---------------

type Theme = 'light' | 'dark';
const THEME_KEY = 'berth.theme';

function storedTheme(): Theme | null {
  try {
    const t = localStorage.getItem(THEME_KEY);
    return t === 'light' || t === 'dark' ? t : null;
  } catch {
    return null;
  }
}

function applyTheme(t: Theme | null): void {
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
applyTheme(storedTheme());

function ThemeToggle(): JSX.Element {
  const systemDark = () => window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
  const [theme, setTheme] = useState<Theme>(() => storedTheme() ?? (systemDark() ? 'dark' : 'light'));
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="btn ghost theme-toggle"
      aria-label={`Switch to the ${next} theme`}
      title={`Switch to the ${next} theme`}
      onClick={() => {
        try {
          localStorage.setItem(THEME_KEY, next);
        } catch {
          // private mode: the choice lasts for this page only
        }
        applyTheme(next);
        setTheme(next);
      }}
    >
      <span aria-hidden="true">{theme === 'dark' ? '☀' : '☾'}</span>
    </button>
  );
}

// ---- pages loaded on demand (the first page ships only explore and repositories) ----------

type Loader = () => Promise<ComponentType<{ route: Route }>>;
const cache = new Map<Loader, ComponentType<{ route: Route }>>();

/** A page from a chunk of its own; keyed by chunk where used, so one Lazy never shows another's page. */
function Lazy({ load, route }: { load: Loader; route: Route }): JSX.Element {
  const [C, setC] = useState<ComponentType<{ route: Route }> | undefined>(() => cache.get(load));
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (C) return;
    load().then(
      (c) => {
        cache.set(load, c);
        setC(() => c);
      },
      setError,
    );
  }, [load]);
  if (error) return <ErrorBox error={error} />;
  return C ? <C route={route} /> : <Loading />;
}

const accountPages: Loader = () => import('./pages/account').then((m) => m.AccountPages);
const peoplePages: Loader = () => import('./pages/people').then((m) => m.PeoplePages);
const adminPage: Loader = () => import('./pages/admin').then((m) => m.AdminPage);

function NotFound(): JSX.Element {
  useTitle('Not found');
  return (
    <section class="notfound">
      <h1>Page not found</h1>
      <p>There is nothing here, or you may not see it.</p>
      <p>
        <Link href={href('/')} class="btn primary">
          Go to Explore
        </Link>
      </p>
    </section>
  );
}

/**
 * Without accounts there is nobody to log in and nothing to manage: the UI
 * says so rather than fail on every call. With no auth at all, repositories
 * are still browsed (search, pages, tags); with htpasswd, nothing is.
 */
function NeedsAccounts(): JSX.Element {
  useTitle('Berth');
  return (
    <section class="notfound">
      <h1>This registry runs without accounts</h1>
      <p>
        {OPEN
          ? 'Its repositories can be searched and browsed here by anyone; accounts, organizations, tokens, stars and settings need the registry to run with '
          : 'Berth’s web UI reads the Hub’s JSON API, which is served when the registry runs with '}
        <code>auth: accounts</code>.
      </p>
      <p>
        The registry API works as usual: <code>docker push {location.host}/NAME</code>. To use the web UI, start Berth with{' '}
        <code>REGISTRY_AUTH=accounts</code> (docs/hub.md); to remove this page, set <code>REGISTRY_BERTH_UI_ENABLED=false</code>.
      </p>
    </section>
  );
}

/** What a registry without accounts but without auth either shows: everything public, read only. */
const BROWSING = new Set<Route['page']>(['home', 'search', 'repo', 'tag', 'notfound']);

function Page({ route }: { route: Route }): JSX.Element {
  if (!sessionNow().accounts && !(OPEN && BROWSING.has(route.page))) return route.page === 'notfound' ? <NotFound /> : <NeedsAccounts />;
  switch (route.page) {
    case 'home':
      return <HomePage />;
    case 'search':
      return <SearchPage />;
    case 'repo':
      return <RepositoryPage name={route.name} tab={route.tab} />;
    case 'tag':
      return <TagPage name={route.name} tag={route.tag} />;
    case 'login':
    case 'register':
    case 'account':
    case 'tokens':
      return <Lazy key="account" load={accountPages} route={route} />;
    case 'user':
    case 'org':
      return <Lazy key="people" load={peoplePages} route={route} />;
    case 'admin':
      return <Lazy key="admin" load={adminPage} route={route} />;
    case 'notfound':
      return <NotFound />;
  }
}

function HeaderSearch(): JSX.Element {
  const { path, query } = useLocation();
  const [q, setQ] = useState(path === '/search' ? (query.get('q') ?? '') : '');
  useEffect(() => {
    if (path === '/search') setQ(query.get('q') ?? '');
  }, [path, query.get('q')]);
  if (path === '/' || path === '/explore' || !sessionNow().accounts) return <div class="header-search" />;
  return (
    <form
      class="header-search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        navigate(href(`/search?q=${encodeURIComponent(q)}`));
      }}
    >
      <label for="header-q" class="sr-only">
        Search repositories
      </label>
      <input id="header-q" type="search" placeholder="Search repositories" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
    </form>
  );
}

function Header(): JSX.Element {
  const session = useSession();
  const { path } = useLocation();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  const me = session.me;
  return (
    <header class="site-header">
      <div class="container header-inner">
        <Link href={href('/')} class="brand">
          <span class="logo" aria-hidden="true">
            ⚓
          </span>{' '}
          Berth
        </Link>
        <HeaderSearch />
        <nav aria-label="Main" class="main-nav">
          <Link href={href('/')} aria-current={path === '/' ? 'page' : undefined}>
            Explore
          </Link>
          {me?.admin && (
            <Link href={href('/admin')} aria-current={path === '/admin' ? 'page' : undefined}>
              Admin
            </Link>
          )}
          {session.loaded && !me && session.accounts && (
            <>
              <Link href={path === '/login' || path === '/register' ? href('/login') : href(`/login?next=${encodeURIComponent(location.pathname + location.search)}`)}>Log in</Link>
              <Link href={href('/register')} class="btn primary small">
                Register
              </Link>
            </>
          )}
          {me && (
            <div class="menu" onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
              <button type="button" class="btn ghost" aria-expanded={open} aria-haspopup="true" onClick={() => setOpen(!open)}>
                {me.name} ▾
              </button>
              {open && (
                <ul class="menu-list">
                  <li>
                    <Link href={href(`/u/${encodeURIComponent(me.name)}`)}>Your repositories</Link>
                  </li>
                  {me.organizations.map((o) => (
                    <li key={o}>
                      <Link href={href(`/orgs/${encodeURIComponent(o)}`)}>{o}</Link>
                    </li>
                  ))}
                  <li>
                    <Link href={href('/account')}>Account</Link>
                  </li>
                  <li>
                    <Link href={href('/account/tokens')}>Access tokens</Link>
                  </li>
                  <li>
                    <button
                      type="button"
                      class="linklike"
                      onClick={async () => {
                        await logOut().catch(() => {});
                        navigate(href('/'));
                      }}
                    >
                      Log out
                    </button>
                  </li>
                </ul>
              )}
            </div>
          )}
          <ThemeToggle />
        </nav>
      </div>
    </header>
  );
}

function App(): JSX.Element {
  const { path } = useLocation();
  const session = useSession();
  const route = parseRoute(path);
  return (
    <>
      <a href="#main" class="skip">
        Skip to content
      </a>
      <Header />
      <main id="main" class="container" tabIndex={-1}>
        {/* Nothing user-specific renders before we know who is asking: private content never flashes. */}
        {session.loaded ? <Page route={route} /> : <Loading />}
      </main>
      <footer class="site-footer">
        <div class="container">
          Berth · an OCI registry · <a href={`${href('')}/berth/v1/openapi.json`}>API</a>
        </div>
      </footer>
    </>
  );
}

void restoreSession();
const root = document.getElementById('app')!;
// The shell's "Loading…" goes: render() adds to a container rather than replacing what the server put there.
root.textContent = '';
render(<App />, root);
