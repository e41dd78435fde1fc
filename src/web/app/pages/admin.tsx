/** Administration: accounts, garbage collection (status, collect now, its summary), storage per repository, the audit log. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiFailure, qs, repoPath, type Account, type AuditEntry, type Counted, type Page, type SearchResult } from '../api';
import { href, Link, navigate, repoHref, useLocation } from '../router';
import { useSession } from '../session';
import { ActionForm, ActionStatus, Async, Empty, ErrorBox, InviteForm, inputValue, size, Time, useAction, useApi, useCursorPages, NEWER_OLDER, useTitle } from '../ui';

const TABS = [
  ['accounts', 'Accounts'],
  ['official', 'Official'],
  ['gc', 'Garbage collection'],
  ['storage', 'Storage'],
  ['audit', 'Audit log'],
] as const;
type Tab = (typeof TABS)[number][0];

function Accounts(): JSX.Element {
  const { query } = useLocation();
  const kind = query.get('kind') ?? '';
  const cursor = useCursorPages('Account pages');
  const last = cursor.last;
  const list = useApi(() => api<Page<Account>>('GET', 'accounts', { query: { kind: kind || undefined, n: 50, last } }), [kind, last]);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [admin, setAdmin] = useState(false);
  const create = useAction();
  return (
    <>
      <div class="filters">
        <label class="field">
          <span>Show</span>
          <select value={kind} onChange={(e) => (cursor.reset(), navigate(href(`/admin${qs({ tab: 'accounts', kind: (e.target as HTMLSelectElement).value || undefined })}`)))}>
            <option value="">users and organizations</option>
            <option value="user">users</option>
            <option value="org">organizations</option>
          </select>
        </label>
      </div>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <Empty>No accounts.</Empty>
          ) : (
            <>
              <div class="table-wrap">
                <table class="table">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Email</th>
                      <th scope="col">Role</th>
                      <th scope="col">Created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((a) => (
                      <tr key={a.name}>
                        <th scope="row">
                          <Link href={href(`/${a.kind === 'org' ? 'orgs' : 'u'}/${encodeURIComponent(a.name)}`)}>{a.name}</Link>
                        </th>
                        <td>{a.kind === 'org' ? 'organization' : 'user'}</td>
                        <td>{a.email ?? <span class="muted">—</span>}</td>
                        <td>{a.disabled ? 'disabled' : a.admin ? 'administrator' : a.kind === 'user' ? 'user' : ''}</td>
                        <td>
                          <Time t={a.createdAt} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {cursor.pager(d.next)}
            </>
          )
        }
      </Async>
      <h2>Create an account</h2>
      <ActionForm
        class="row"
        action={create}
        submit={async () => {
          await api('POST', 'accounts', { body: { name: name.trim(), password, admin } });
          setName('');
          setPassword('');
          setAdmin(false);
          list.reload();
          return 'Account created.';
        }}
      >
        <label class="field">
          <span>User name</span>
          <input required autoComplete="off" value={name} onInput={(e) => setName(inputValue(e))} />
        </label>
        <label class="field">
          <span>Password</span>
          <input required type="password" autoComplete="new-password" minLength={8} value={password} onInput={(e) => setPassword(inputValue(e))} />
        </label>
        <label class="check">
          <input type="checkbox" checked={admin} onChange={() => setAdmin(!admin)} /> Administrator
        </label>
        <button type="submit" class="btn" disabled={create.busy}>
          Create
        </button>
      </ActionForm>
      <ActionStatus action={create} />
      <h2>Invite someone</h2>
      <InviteForm />
    </>
  );
}

/** Official repositories: the badge and the search filter; marked here or in a repository's settings. */
function Official(): JSX.Element {
  const list = useApi(() => api<Counted<SearchResult>>('GET', 'search', { query: { official: 'true', sort: 'stars', n: 100 } }), []);
  const [name, setName] = useState('');
  const action = useAction();
  const set = (repo: string, official: boolean) =>
    action.run(async () => {
      await api('PUT', `${repoPath(repo)}/-/official`, { body: { official } });
      list.reload();
      return official ? `${repo} is official.` : `${repo} is no longer official.`;
    });
  return (
    <>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <Empty>No official repositories. library/ repositories are official from their first push.</Empty>
          ) : (
            <ul class="plain">
              {d.items.map((r) => (
                <li key={r.name} class="row">
                  <Link href={repoHref(r.name)}>{r.name}</Link>
                  <button type="button" class="btn small" aria-label={`Remove the official flag of ${r.name}`} onClick={() => void set(r.name, false)} disabled={action.busy}>
                    Remove
                  </button>
                </li>
              ))}
            </ul>
          )
        }
      </Async>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void set(name.trim(), true).then((ok) => ok && setName(''));
        }}
      >
        <label class="field">
          <span>Repository</span>
          <input required value={name} placeholder="namespace/name" onInput={(e) => setName(inputValue(e))} />
        </label>
        <button type="submit" class="btn" disabled={action.busy}>
          Mark official
        </button>
      </form>
      <ActionStatus action={action} />
    </>
  );
}

interface GcRun {
  id: number;
  state: 'queued' | 'running' | 'finished' | 'failed';
  dryRun: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  summary: null | { blobsDeleted: number; bytesReclaimed: number; manifestsDeleted: number; blobsMarked: number; blobsEligible: number; linksPruned: number; orphanFilesDeleted: number; durationMs: number };
  error: string | null;
}

function Gc(): JSX.Element {
  const latest = useApi(() => api<GcRun>('GET', 'gc/runs/latest').catch((e: unknown) => (e instanceof ApiFailure && e.status === 404 ? null : Promise.reject(e))), []);
  const [dryRun, setDryRun] = useState(false);
  const run = useAction();
  return (
    <>
      <Async state={latest}>
        {(r) =>
          r === null ? (
            <Empty>No garbage collection has run yet.</Empty>
          ) : (
            <section aria-labelledby="run-h" class="card">
              <h2 id="run-h" class="h3">
                Latest run #{r.id}: {r.state}
                {r.dryRun ? ' (dry run)' : ''}
              </h2>
              <dl class="facts">
                <dt>Started</dt>
                <dd>
                  <Time t={r.startedAt ?? r.createdAt} />
                </dd>
                <dt>Finished</dt>
                <dd>{r.finishedAt ? <Time t={r.finishedAt} /> : '—'}</dd>
                {r.summary && (
                  <>
                    <dt>Space reclaimed</dt>
                    <dd>{size(r.summary.bytesReclaimed)}</dd>
                    <dt>Blobs deleted</dt>
                    <dd>
                      {r.summary.blobsDeleted} of {r.summary.blobsEligible} eligible ({r.summary.blobsMarked} in use)
                    </dd>
                    <dt>Manifests deleted</dt>
                    <dd>{r.summary.manifestsDeleted}</dd>
                    <dt>Took</dt>
                    <dd>{(r.summary.durationMs / 1000).toFixed(1)} s</dd>
                  </>
                )}
                {r.error && (
                  <>
                    <dt>Error</dt>
                    <dd>{r.error}</dd>
                  </>
                )}
              </dl>
            </section>
          )
        }
      </Async>
      <ActionForm
        class="row"
        action={run}
        submit={async () => {
          // Waits up to a minute for the summary; a longer collection shows as running and is reloaded.
          await api('POST', 'gc', { query: { dryrun: dryRun ? 'true' : undefined, wait: '60s' } });
          latest.reload();
          return dryRun ? 'Dry run finished: nothing was deleted.' : 'Collection finished.';
        }}
      >
        <label class="check">
          <input type="checkbox" checked={dryRun} onChange={() => setDryRun(!dryRun)} /> Dry run (report only)
        </label>
        <button type="submit" class="btn primary" disabled={run.busy}>
          {run.busy ? 'Collecting…' : 'Collect garbage now'}
        </button>
      </ActionForm>
      <ActionStatus action={run} />
    </>
  );
}

interface StorageUsage {
  totalBytes: number;
  totalBlobs: number;
  reclaimableBytes: number;
  reclaimableBlobs: number;
  repositories: { name: string; bytes: number; blobs: number }[];
}

function Storage(): JSX.Element {
  const state = useApi(() => api<StorageUsage>('GET', 'storage'), []);
  const [sort, setSort] = useState<'bytes' | 'name'>('bytes');
  return (
    <Async state={state}>
      {(u) => (
        <>
          <dl class="facts">
            <dt>Stored</dt>
            <dd>
              {size(u.totalBytes)} in {u.totalBlobs.toLocaleString()} blobs
            </dd>
            <dt>Reclaimable</dt>
            <dd>
              {size(u.reclaimableBytes)} in {u.reclaimableBlobs.toLocaleString()} blobs
            </dd>
          </dl>
          {u.repositories.length === 0 ? (
            <Empty>No repositories.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="table">
                <caption class="sr-only">Storage per repository</caption>
                <thead>
                  <tr>
                    <th scope="col" aria-sort={sort === 'name' ? 'ascending' : 'none'}>
                      <button type="button" class="linklike" onClick={() => setSort('name')}>
                        Repository
                      </button>
                    </th>
                    <th scope="col" aria-sort={sort === 'bytes' ? 'descending' : 'none'}>
                      <button type="button" class="linklike" onClick={() => setSort('bytes')}>
                        Size
                      </button>
                    </th>
                    <th scope="col">Blobs</th>
                  </tr>
                </thead>
                <tbody>
                  {[...u.repositories]
                    .sort((a, b) => (sort === 'bytes' ? b.bytes - a.bytes : a.name < b.name ? -1 : 1))
                    .map((r) => (
                      <tr key={r.name}>
                        <th scope="row">
                          <Link href={repoHref(r.name)}>{r.name}</Link>
                        </th>
                        <td>{size(r.bytes)}</td>
                        <td>{r.blobs}</td>
                      </tr>
                    ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Async>
  );
}

function Audit(): JSX.Element {
  const { query } = useLocation();
  const actor = query.get('actor') ?? '';
  const action = query.get('action') ?? '';
  const cursor = useCursorPages('Audit pages', NEWER_OLDER);
  const last = cursor.last;
  const list = useApi(() => api<Page<AuditEntry>>('GET', 'audit', { query: { actor: actor || undefined, action: action || undefined, n: 50, last } }), [actor, action, last]);
  return (
    <>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.target as HTMLFormElement);
          cursor.reset();
          navigate(href(`/admin${qs({ tab: 'audit', actor: String(f.get('actor') ?? '') || undefined, action: String(f.get('action') ?? '') || undefined })}`));
        }}
      >
        <label class="field">
          <span>Actor</span>
          <input name="actor" value={actor} />
        </label>
        <label class="field">
          <span>Action</span>
          <input name="action" value={action} placeholder="login.failed" />
        </label>
        <button type="submit" class="btn">
          Filter
        </button>
      </form>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <Empty>No entries.</Empty>
          ) : (
            <>
              <div class="table-wrap">
                <table class="table">
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Actor</th>
                      <th scope="col">Action</th>
                      <th scope="col">Target</th>
                      <th scope="col">Client</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((e) => (
                      <tr key={e.id}>
                        <td>
                          <Time t={e.at} />
                        </td>
                        <td>{e.actor ?? <span class="muted">system</span>}</td>
                        <td>
                          <code>{e.action}</code>
                        </td>
                        <td class="break">{e.target ?? ''}</td>
                        <td>{e.client ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {cursor.pager(d.next)}
            </>
          )
        }
      </Async>
    </>
  );
}

export function AdminPage(): JSX.Element {
  useTitle('Administration');
  const session = useSession();
  const { query } = useLocation();
  const tab = (TABS.find(([t]) => t === query.get('tab'))?.[0] ?? 'accounts') as Tab;
  if (!session.me) {
    return (
      <section class="notfound">
        <h1>Administration</h1>
        <p>
          <Link href={href(`/login?next=${encodeURIComponent(href('/admin'))}`)} class="btn primary">
            Log in
          </Link>
        </p>
      </section>
    );
  }
  if (!session.me.admin) return <ErrorBox error={new Error('This page is for administrators.')} />;
  return (
    <>
      <h1>Administration</h1>
      <nav class="tabs admin-tabs" aria-label="Administration">
        {TABS.map(([t, label]) => (
          <Link key={t} href={href(`/admin?tab=${t}`)} aria-current={t === tab ? 'page' : undefined}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === 'accounts' && <Accounts />}
      {tab === 'official' && <Official />}
      {tab === 'gc' && <Gc />}
      {tab === 'storage' && <Storage />}
      {tab === 'audit' && <Audit />}
    </>
  );
}
