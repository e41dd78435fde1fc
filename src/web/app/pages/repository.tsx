/** A repository: overview (README, pull command, stars), tags, a tag's detail, activity; settings load on demand. */
import type { ComponentType, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, qs, repoPath, type ActivityEntry, type Counted, type ManifestDetail, type Page, type Repository, type Tag } from '../api';
import { href, Link, navigate, repoHref, tagHref, useLocation } from '../router';
import { sessionNow, useSession } from '../session';
import { Async, Confirm, CopyButton, count, Empty, ErrorBox, FollowButton, Loading, Pager, shortDigest, size, NEWER_OLDER, Time, useAction, useApi, useCursorPages, useTitle } from '../ui';

export const getRepository = (name: string) => api<Repository>('GET', repoPath(name));

function RepoNotFound({ name }: { name: string }): JSX.Element {
  const session = useSession();
  return (
    <section class="notfound">
      <h1>Repository not found</h1>
      <p>
        <code>{name}</code> does not exist, or you may not see it.
      </p>
      {!session.me && session.accounts && (
        <p>
          <Link href={href(`/login?next=${encodeURIComponent(location.pathname)}`)} class="btn primary">
            Log in to see private repositories
          </Link>
        </p>
      )}
    </section>
  );
}

function pullCommand(name: string, reference?: string): string {
  const short = name.startsWith('library/') ? name.slice('library/'.length) : name;
  const ref = reference === undefined ? '' : reference.startsWith('sha256:') ? `@${reference}` : `:${reference}`;
  return `docker pull ${location.host}/${short}${ref}`;
}

function StarButton({ repo, onChange }: { repo: Repository; onChange: () => void }): JSX.Element | null {
  const session = useSession();
  const action = useAction();
  if (!session.me || session.me.kind !== 'user') {
    return (
      <span class="stat" title="stars">
        ★ {count(repo.star_count)}
      </span>
    );
  }
  return (
    <>
      <button
        type="button"
        class={`btn small ${repo.has_starred ? 'starred' : ''}`}
        aria-pressed={repo.has_starred}
        disabled={action.busy}
        onClick={() => void action.run(async () => (await api(repo.has_starred ? 'DELETE' : 'PUT', `${repoPath(repo.name)}/-/star`), onChange()))}
      >
        {repo.has_starred ? '★ Starred' : '☆ Star'} <span class="count">{count(repo.star_count)}</span>
      </button>
      {action.error ? <ErrorBox error={action.error} /> : null}
    </>
  );
}

const TABS = [
  ['overview', 'Overview', ''],
  ['tags', 'Tags', '/-/tags'],
  ['activity', 'Activity', '/-/activity'],
  ['settings', 'Settings', '/-/settings'],
] as const;

type Tab = (typeof TABS)[number][0];

function RepoHeader({ repo, tab, reload }: { repo: Repository; tab: Tab | 'tag'; reload: () => void }): JSX.Element {
  const session = useSession();
  const [ns, ...rest] = repo.name.split('/');
  return (
    <div class="repo-header">
      <div class="repo-title">
        <h1>
          {rest.length === 0 ? (
            <Link href={repoHref(repo.name)}>{repo.name}</Link>
          ) : (
            <>
              {/* Without accounts there are no user or organization pages: the namespace is only a name. */}
              {session.accounts ? (
                <Link href={href(`/${repo.owner?.kind === 'org' ? 'orgs' : 'u'}/${encodeURIComponent(ns!)}`)} class="muted">
                  {ns}
                </Link>
              ) : (
                <span class="muted">{ns}</span>
              )}
              <span class="muted"> / </span>
              <Link href={repoHref(repo.name)}>{rest.join('/')}</Link>
            </>
          )}
        </h1>
        {repo.is_official && <span class="badge official">Official</span>}
        <span class={`badge ${repo.is_private ? 'private' : 'public'}`}>{repo.is_private ? 'Private' : 'Public'}</span>
      </div>
      <p class="desc">{repo.description || <span class="muted">No description</span>}</p>
      <div class="repo-stats">
        <StarButton repo={repo} onChange={reload} />
        <FollowButton kind="repository" target={repo.name} me={session.me?.kind === 'user' ? session.me.name : null} />
        <span class="stat" title="pulls">
          ↓ {count(repo.pull_count)} pulls
        </span>
        <span class="stat">
          Updated <Time t={repo.last_updated} />
        </span>
      </div>
      <nav class="tabs" aria-label="Repository">
        {TABS.filter(([t]) => t !== 'settings' || repo.permission === 'admin').map(([t, label, path]) => (
          <Link key={t} href={repoHref(repo.name, path)} aria-current={t === tab || (t === 'tags' && tab === 'tag') ? 'page' : undefined}>
            {label}
            {t === 'tags' ? <span class="count"> {repo.tags}</span> : null}
          </Link>
        ))}
      </nav>
    </div>
  );
}

function Overview({ repo }: { repo: Repository }): JSX.Element {
  return (
    <div class="two-col">
      <article class="readme" aria-label="README">
        {repo.full_description_html ? (
          // The API renders the README as sanitised HTML (no raw HTML, scripts, handlers or javascript: links); the CSP forbids inline script besides.
          <div class="markdown" dangerouslySetInnerHTML={{ __html: repo.full_description_html }} />
        ) : (
          <Empty>
            No README yet.
            {repo.permission === 'admin' && (
              <>
                {' '}
                <Link href={repoHref(repo.name, '/-/settings')}>Write one</Link>
              </>
            )}
          </Empty>
        )}
      </article>
      <aside class="side">
        <h2 class="h3">Pull this image</h2>
        <div class="command">
          <code>{pullCommand(repo.name)}</code>
          <CopyButton text={pullCommand(repo.name)} label="Copy pull command" />
        </div>
        <dl class="facts">
          <dt>Tags</dt>
          <dd>{repo.tags}</dd>
          <dt>Size</dt>
          <dd>{size(repo.sizeBytes)}</dd>
          <dt>Visibility</dt>
          <dd>{repo.visibility}</dd>
          <dt>Owner</dt>
          <dd>{repo.owner ? <Link href={href(`/${repo.owner.kind === 'org' ? 'orgs' : 'u'}/${encodeURIComponent(repo.owner.name)}`)}>{repo.owner.name}</Link> : 'administrators'}</dd>
          <dt>Last pulled</dt>
          <dd>
            <Time t={repo.last_pulled} />
          </dd>
          <dt>Created</dt>
          <dd>
            <Time t={repo.date_registered} />
          </dd>
          <dt>Your access</dt>
          <dd>{repo.permission}</dd>
        </dl>
      </aside>
    </div>
  );
}

const TAG_PAGE = 25;

function platforms(t: Tag): string {
  if (t.images.length === 0) return '—';
  return t.images.map((i) => `${i.os}/${i.architecture}${i.variant ? `/${i.variant}` : ''}`).join(', ');
}

function Tags({ repo, reload }: { repo: Repository; reload: () => void }): JSX.Element {
  const { query } = useLocation();
  const sort = query.get('sort') ?? 'updated';
  const filter = query.get('filter') ?? '';
  const page = Math.max(1, Number(query.get('page') ?? '1') || 1);
  const state = useApi(
    () => api<Counted<Tag>>('GET', `${repoPath(repo.name)}/-/tags`, { query: { sort, filter: filter || undefined, n: TAG_PAGE, last: page > 1 ? (page - 1) * TAG_PAGE : undefined } }),
    [repo.name, sort, filter, page],
  );
  const urlWith = (c: Record<string, string | number | undefined>) => repoHref(repo.name, `/-/tags${qs({ sort: sort === 'updated' ? undefined : sort, filter: filter || undefined, ...c })}`);
  const [deleting, setDeleting] = useState<Tag | null>(null);
  const del = useAction();
  const [draft, setDraft] = useState(filter);
  useEffect(() => setDraft(filter), [filter]);
  const canDelete = repo.permission === 'admin';
  return (
    <section aria-labelledby="tags-h">
      <h2 id="tags-h" class="sr-only">
        Tags
      </h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(urlWith({ filter: draft || undefined, page: undefined }));
        }}
      >
        <label class="field grow">
          <span>Filter tags</span>
          <input type="search" value={draft} placeholder="e.g. 1.2" onInput={(e) => setDraft((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field">
          <span>Sort by</span>
          <select value={sort} onChange={(e) => navigate(urlWith({ sort: (e.target as HTMLSelectElement).value, page: undefined }))}>
            <option value="updated">Recently pushed</option>
            <option value="name">Name</option>
            <option value="pulled">Recently pulled</option>
          </select>
        </label>
        <button type="submit" class="btn">
          Filter
        </button>
      </form>
      <Async state={state}>
        {(d) =>
          d.items.length === 0 ? (
            <Empty>{filter ? `No tag matches “${filter}”.` : 'This repository has no tags yet.'}</Empty>
          ) : (
            <>
              <div class="table-wrap">
                <table class="table">
                  <caption class="sr-only">Tags of {repo.name}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Tag</th>
                      <th scope="col">Digest</th>
                      <th scope="col">Size</th>
                      <th scope="col">Platforms</th>
                      <th scope="col">Pushed</th>
                      <th scope="col" class="wide-only">
                        Last pulled
                      </th>
                      {canDelete && (
                        <th scope="col">
                          <span class="sr-only">Actions</span>
                        </th>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((t) => (
                      <tr key={t.name}>
                        <th scope="row">
                          <Link href={tagHref(repo.name, t.name)}>{t.name}</Link>
                        </th>
                        <td>
                          <code title={t.digest}>{shortDigest(t.digest)}</code> <CopyButton text={t.digest} label="Copy digest" />
                        </td>
                        <td>
                          {size(t.full_size)}
                          {t.images.length > 1 && (
                            <ul class="per-platform">
                              {t.images.map((i) => (
                                <li key={i.digest}>
                                  {i.os}/{i.architecture}
                                  {i.variant ? `/${i.variant}` : ''}: {size(i.size)}
                                </li>
                              ))}
                            </ul>
                          )}
                        </td>
                        <td>{platforms(t)}</td>
                        <td>
                          <Time t={t.last_updated} />
                        </td>
                        <td class="wide-only">
                          <Time t={t.last_pulled} />
                        </td>
                        {canDelete && (
                          <td>
                            <button type="button" class="btn small danger" onClick={() => (del.clear(), setDeleting(t))} aria-label={`Delete tag ${t.name}`}>
                              Delete
                            </button>
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <Pager page={page} pageSize={TAG_PAGE} total={d.count} hrefFor={(p) => urlWith({ page: p > 1 ? p : undefined })} />
            </>
          )
        }
      </Async>
      <Confirm
        open={deleting !== null}
        title={`Delete tag ${deleting?.name ?? ''}?`}
        confirmLabel="Delete tag"
        busy={del.busy}
        error={del.error}
        onCancel={() => setDeleting(null)}
        onConfirm={() =>
          void del
            .run(async () => {
              await api('DELETE', `${repoPath(repo.name)}/-/tags/${encodeURIComponent(deleting!.name)}`);
            })
            .then((ok) => {
              if (ok) {
                setDeleting(null);
                state.reload();
                reload();
              }
            })
        }
      >
        <p>
          The tag <strong>{deleting?.name}</strong> is removed from <code>{repo.name}</code>. The image stays while other tags or digests refer to it.
        </p>
      </Confirm>
    </section>
  );
}

export const ACTIONS: Record<string, string> = {
  push: 'pushed',
  tag: 'tagged',
  delete: 'deleted',
  visibility: 'changed the visibility',
  permission: 'changed permissions',
  star: 'starred',
  unstar: 'unstarred',
  description: 'changed the description',
  readme: 'changed the README',
  official: 'changed the official flag',
};

export function ActivityList({ path, showRepo }: { path: string; showRepo?: boolean }): JSX.Element {
  const cursor = useCursorPages('Activity pages', NEWER_OLDER);
  const last = cursor.last;
  const state = useApi(() => api<Page<ActivityEntry>>('GET', path, { query: { n: 25, last } }), [path, last]);
  return (
    <Async state={state}>
      {(d) =>
        d.items.length === 0 && cursor.first ? (
          <Empty>No activity yet.</Empty>
        ) : (
          <>
            <ol class="activity">
              {d.items.map((e) => (
                <li key={e.id}>
                  <strong>{e.actor ?? 'someone'}</strong> {ACTIONS[e.action] ?? e.action}
                  {e.tag && (
                    <>
                      {' '}
                      <code>{e.tag}</code>
                    </>
                  )}
                  {e.digest && !e.tag && (
                    <>
                      {' '}
                      <code title={e.digest}>{shortDigest(e.digest)}</code>
                    </>
                  )}
                  {showRepo && e.repository && (
                    <>
                      {' '}
                      in <Link href={repoHref(e.repository)}>{e.repository}</Link>
                    </>
                  )}{' '}
                  <span class="muted">
                    <Time t={e.at} />
                  </span>
                </li>
              ))}
            </ol>
            {cursor.pager(d.next)}
          </>
        )
      }
    </Async>
  );
}

type SettingsComponent = ComponentType<{ repo: Repository; reload: () => void }>;
let settingsComponent: SettingsComponent | undefined;

function LazySettings(props: { repo: Repository; reload: () => void }): JSX.Element {
  const [C, setC] = useState<SettingsComponent | undefined>(() => settingsComponent);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (C) return;
    import('./settings').then((m) => {
      settingsComponent = m.RepositorySettings;
      setC(() => m.RepositorySettings);
    }, setError);
  }, []);
  if (error) return <ErrorBox error={error} />;
  return C ? <C {...props} /> : <Loading />;
}

export function RepositoryPage({ name, tab }: { name: string; tab: Tab }): JSX.Element {
  const session = useSession();
  useTitle(name);
  const state = useApi(() => getRepository(name), [name, session.me?.name]);
  return (
    <Async state={state} notFound={<RepoNotFound name={name} />}>
      {(repo) => (
        <>
          <RepoHeader repo={repo} tab={tab} reload={state.reload} />
          {tab === 'overview' && <Overview repo={repo} />}
          {tab === 'tags' && <Tags repo={repo} reload={state.reload} />}
          {tab === 'activity' && <ActivityList path={`${repoPath(repo.name)}/-/activity`} />}
          {tab === 'settings' &&
            (repo.permission === 'admin' ? (
              <LazySettings repo={repo} reload={state.reload} />
            ) : (
              <ErrorBox error={new Error(sessionNow().me ? 'Only the repository’s administrators see its settings.' : 'Log in to change this repository’s settings.')} />
            ))}
        </>
      )}
    </Async>
  );
}

// ---- a tag: manifest, config, layers, history, referrers ----------------------------------

function ManifestView({ name, reference, m }: { name: string; reference: string; m: ManifestDetail }): JSX.Element {
  const [raw, setRaw] = useState(false);
  // History lines and layers pair up: entries with empty_layer have no layer.
  let layerIndex = 0;
  const history = m.history.map((h) => ({ ...h, layer: h.empty_layer ? undefined : m.layers[layerIndex++] }));
  return (
    <>
      <div class="command">
        <code>{pullCommand(name, reference)}</code>
        <CopyButton text={pullCommand(name, reference)} label="Copy pull command" />
      </div>
      <dl class="facts wide">
        <dt>Digest</dt>
        <dd>
          <code class="break">{m.digest}</code> <CopyButton text={m.digest} label="Copy digest" />
        </dd>
        <dt>Media type</dt>
        <dd>
          <code>{m.mediaType}</code>
        </dd>
        {m.artifactType && (
          <>
            <dt>Artifact type</dt>
            <dd>
              <code>{m.artifactType}</code>
            </dd>
          </>
        )}
        <dt>Manifest size</dt>
        <dd>{size(m.size)}</dd>
        {m.kind !== 'index' && (
          <>
            <dt>Compressed size</dt>
            <dd>{size(m.layers.reduce((s, l) => s + l.size, 0) + (m.config?.size ?? 0))}</dd>
          </>
        )}
      </dl>
      {m.kind === 'index' && (
        <section aria-labelledby="platforms-h">
          <h2 id="platforms-h">Platforms</h2>
          <div class="table-wrap">
            <table class="table">
              <thead>
                <tr>
                  <th scope="col">Platform</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Manifest size</th>
                </tr>
              </thead>
              <tbody>
                {m.manifests.map((d) => (
                  <tr key={d.digest}>
                    <th scope="row">{d.platform ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? `/${d.platform.variant}` : ''}` : (d.artifactType ?? 'unknown')}</th>
                    <td>
                      <Link href={tagHref(name, d.digest)}>
                        <code>{shortDigest(d.digest)}</code>
                      </Link>
                    </td>
                    <td>{size(d.size)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      )}
      {m.config && (
        <section aria-labelledby="config-h">
          <h2 id="config-h">Configuration</h2>
          <dl class="facts wide">
            <dt>Platform</dt>
            <dd>{[m.config.os, m.config.architecture, m.config.variant].filter(Boolean).join('/') || '—'}</dd>
            <dt>Created</dt>
            <dd>{m.config.created ? <Time t={m.config.created} /> : '—'}</dd>
            {m.config.author && (
              <>
                <dt>Author</dt>
                <dd>{m.config.author}</dd>
              </>
            )}
            {m.config.entrypoint && (
              <>
                <dt>Entrypoint</dt>
                <dd>
                  <code>{JSON.stringify(m.config.entrypoint)}</code>
                </dd>
              </>
            )}
            {m.config.cmd && (
              <>
                <dt>Command</dt>
                <dd>
                  <code>{JSON.stringify(m.config.cmd)}</code>
                </dd>
              </>
            )}
            {m.config.workingDir && (
              <>
                <dt>Working directory</dt>
                <dd>
                  <code>{m.config.workingDir}</code>
                </dd>
              </>
            )}
            {m.config.user && (
              <>
                <dt>User</dt>
                <dd>
                  <code>{m.config.user}</code>
                </dd>
              </>
            )}
            {m.config.exposedPorts.length > 0 && (
              <>
                <dt>Ports</dt>
                <dd>{m.config.exposedPorts.join(', ')}</dd>
              </>
            )}
            {m.config.env.length > 0 && (
              <>
                <dt>Environment</dt>
                <dd>
                  <ul class="plain">
                    {m.config.env.map((e) => (
                      <li key={e}>
                        <code class="break">{e}</code>
                      </li>
                    ))}
                  </ul>
                </dd>
              </>
            )}
            {Object.keys(m.config.labels).length > 0 && (
              <>
                <dt>Labels</dt>
                <dd>
                  <ul class="plain">
                    {Object.entries(m.config.labels).map(([k, v]) => (
                      <li key={k}>
                        <code class="break">
                          {k}={v}
                        </code>
                      </li>
                    ))}
                  </ul>
                </dd>
              </>
            )}
          </dl>
        </section>
      )}
      {m.kind !== 'index' && (
        <section aria-labelledby="layers-h">
          <h2 id="layers-h">Layers ({m.layers.length})</h2>
          {m.layers.length === 0 ? (
            <Empty>No layers.</Empty>
          ) : (
            <ol class="layers">
              {(history.length > 0 ? history : m.layers.map((l) => ({ layer: l, created_by: null, created: null, empty_layer: false, comment: null }))).map((h, i) => (
                <li key={i} class={h.layer ? '' : 'empty-layer'}>
                  <code class="created-by">{h.created_by ?? (h.layer ? h.layer.mediaType : '')}</code>
                  <span class="layer-size">{h.layer ? size(h.layer.size) : '0 B'}</span>
                  {h.layer && (
                    <code class="muted digest" title={h.layer.digest}>
                      {shortDigest(h.layer.digest)}
                    </code>
                  )}
                </li>
              ))}
            </ol>
          )}
        </section>
      )}
      <section aria-labelledby="referrers-h">
        <h2 id="referrers-h">Referrers</h2>
        {m.referrers.length === 0 ? (
          <Empty>No signatures, SBOMs or other artifacts refer to this manifest.</Empty>
        ) : (
          <ul class="plain referrers">
            {m.referrers.map((r) => (
              <li key={r.digest}>
                <span class="badge">{r.artifactType ?? r.mediaType}</span>{' '}
                <Link href={tagHref(name, r.digest)}>
                  <code>{shortDigest(r.digest)}</code>
                </Link>{' '}
                <span class="muted">{size(r.size)}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section>
        <button type="button" class="btn" aria-expanded={raw} onClick={() => setRaw(!raw)}>
          {raw ? 'Hide' : 'Show'} the manifest JSON
        </button>
        {raw && <pre class="raw">{JSON.stringify(m.manifest, null, 2)}</pre>}
      </section>
    </>
  );
}

export function TagPage({ name, tag }: { name: string; tag: string }): JSX.Element {
  const session = useSession();
  useTitle(`${name}:${tag}`);
  const repo = useApi(() => getRepository(name), [name, session.me?.name]);
  const manifest = useApi(() => api<ManifestDetail>('GET', `${repoPath(name)}/-/manifests/${encodeURIComponent(tag)}`), [name, tag, session.me?.name]);
  return (
    <Async state={repo} notFound={<RepoNotFound name={name} />}>
      {(r) => (
        <>
          <RepoHeader repo={r} tab="tag" reload={repo.reload} />
          <h2 class="tag-title">
            {tag.startsWith('sha256:') ? 'Manifest' : 'Tag'} <code>{tag.startsWith('sha256:') ? shortDigest(tag) : tag}</code>
          </h2>
          <Async
            state={manifest}
            notFound={
              <Empty>
                No tag or manifest <code>{tag}</code> in this repository. <Link href={repoHref(name, '/-/tags')}>See its tags</Link>
              </Empty>
            }
          >
            {(m) => <ManifestView name={name} reference={tag} m={m} />}
          </Async>
        </>
      )}
    </Async>
  );
}
