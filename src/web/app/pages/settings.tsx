/** A repository's settings, for its administrators: description, README, visibility, who has access, webhooks, the official flag, delete. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, repoPath, type Page, type Repository } from '../api';
import { href, navigate } from '../router';
import { refreshMe, useSession } from '../session';
import { ActionForm, ActionStatus, Async, Confirm, Empty, inputValue, Time, useAction, useApi } from '../ui';

interface Webhook {
  id: number;
  name: string;
  url: string;
  events: string[];
  active: boolean;
  createdBy: string | null;
  createdAt: number;
}

function Collaborators({ repo }: { repo: Repository }): JSX.Element {
  const path = `${repoPath(repo.name)}/-/collaborators`;
  const list = useApi(() => api<Page<{ name: string; permission: string }>>('GET', path, { query: { n: 1000 } }), [path]);
  const [user, setUser] = useState('');
  const [perm, setPerm] = useState('read');
  const action = useAction();
  return (
    <>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <p class="muted">No collaborators: only {repo.owner?.name ?? 'the owner'} (and administrators) have access beyond what the visibility gives.</p>
          ) : (
            <ul class="plain">
              {d.items.map((c) => (
                <li key={c.name} class="row">
                  <span>
                    <strong>{c.name}</strong>: {c.permission}
                  </span>
                  <button
                    type="button"
                    class="btn small danger"
                    aria-label={`Remove collaborator ${c.name}`}
                    onClick={() => void action.run(async () => (await api('DELETE', `${path}/${encodeURIComponent(c.name)}`), list.reload()))}
                  >
                    Remove
                  </button>
                </li>
              ))}
            </ul>
          )
        }
      </Async>
      <ActionForm
        class="row"
        action={action}
        submit={async () => {
          await api('PUT', `${path}/${encodeURIComponent(user.trim())}`, { body: { permission: perm } });
          setUser('');
          list.reload();
        }}
      >
        <label class="field">
          <span>User</span>
          <input required value={user} onInput={(e) => setUser(inputValue(e))} />
        </label>
        <label class="field">
          <span>Permission</span>
          <select value={perm} onChange={(e) => setPerm((e.target as HTMLSelectElement).value)}>
            <option value="read">read</option>
            <option value="write">write</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" class="btn" disabled={action.busy}>
          Add collaborator
        </button>
      </ActionForm>
      <ActionStatus action={action} />
    </>
  );
}

function TeamAccess({ repo, org }: { repo: Repository; org: string }): JSX.Element {
  const base = `orgs/${encodeURIComponent(org)}/teams`;
  const teams = useApi(async () => {
    const page = await api<Page<{ name: string }>>('GET', base, { query: { n: 1000 } });
    return Promise.all(
      page.items.map(async (t) => {
        const team = await api<{ name: string; permissions: { repository: string; permission: string }[] }>('GET', `${base}/${encodeURIComponent(t.name)}`);
        const own = team.permissions.find((p) => p.repository === repo.name);
        const all = team.permissions.find((p) => p.repository === '*');
        return { name: t.name, own: own?.permission ?? null, all: all?.permission ?? null };
      }),
    );
  }, [base, repo.name]);
  const action = useAction();
  return (
    <>
      <Async state={teams}>
        {(list) =>
          list.length === 0 ? (
            <Empty>{org} has no teams.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="table">
                <thead>
                  <tr>
                    <th scope="col">Team</th>
                    <th scope="col">On this repository</th>
                    <th scope="col">On every repository of {org}</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((t) => (
                    <tr key={t.name}>
                      <th scope="row">{t.name}</th>
                      <td>
                        <label class="sr-only" for={`team-${t.name}`}>
                          Permission of team {t.name} on {repo.name}
                        </label>
                        <select
                          id={`team-${t.name}`}
                          value={t.own ?? 'none'}
                          disabled={action.busy}
                          onChange={(e) =>
                            void action.run(async () => {
                              await api('PUT', `${base}/${encodeURIComponent(t.name)}/permissions`, { body: { repository: repo.name, permission: (e.target as HTMLSelectElement).value } });
                              teams.reload();
                              return `Access of ${t.name} saved.`;
                            })
                          }
                        >
                          <option value="none">none</option>
                          <option value="read">read</option>
                          <option value="write">write</option>
                          <option value="admin">admin</option>
                        </select>
                      </td>
                      <td>{t.all ?? <span class="muted">none</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
      <ActionStatus action={action} />
    </>
  );
}

function Webhooks({ repo }: { repo: Repository }): JSX.Element {
  const path = `${repoPath(repo.name)}/-/webhooks`;
  const list = useApi(() => api<Page<Webhook>>('GET', path, { query: { n: 100 } }), [path]);
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const action = useAction();
  return (
    <>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <p class="muted">No webhooks. A webhook is called with Docker Hub’s payload on every push with a tag.</p>
          ) : (
            <ul class="plain">
              {d.items.map((h) => (
                <li key={h.id} class="row">
                  <span>
                    <strong>{h.name}</strong> <code class="break">{h.url}</code> {h.active ? '' : <span class="badge">inactive</span>}{' '}
                    <span class="muted">
                      <Time t={h.createdAt} />
                    </span>
                  </span>
                  <button
                    type="button"
                    class="btn small"
                    onClick={() => void action.run(async () => (await api('PATCH', `${path}/${h.id}`, { body: { active: !h.active } }), list.reload()))}
                  >
                    {h.active ? 'Pause' : 'Resume'}
                  </button>
                  <button
                    type="button"
                    class="btn small danger"
                    aria-label={`Delete webhook ${h.name}`}
                    onClick={() => void action.run(async () => (await api('DELETE', `${path}/${h.id}`), list.reload()))}
                  >
                    Delete
                  </button>
                </li>
              ))}
            </ul>
          )
        }
      </Async>
      <ActionForm
        class="row"
        action={action}
        submit={async () => {
          await api('POST', path, { body: { name: name.trim(), url: url.trim(), events: ['push'] } });
          setName('');
          setUrl('');
          list.reload();
        }}
      >
        <label class="field">
          <span>Name</span>
          <input required value={name} onInput={(e) => setName(inputValue(e))} />
        </label>
        <label class="field grow">
          <span>URL</span>
          <input required type="url" value={url} placeholder="https://ci.example.org/hook" onInput={(e) => setUrl(inputValue(e))} />
        </label>
        <button type="submit" class="btn" disabled={action.busy}>
          Add webhook
        </button>
      </ActionForm>
      <ActionStatus action={action} />
    </>
  );
}

export function RepositorySettings({ repo, reload }: { repo: Repository; reload: () => void }): JSX.Element {
  const session = useSession();
  const [description, setDescription] = useState(repo.description);
  const [readme, setReadme] = useState(repo.full_description);
  const desc = useAction();
  const rd = useAction();
  const vis = useAction();
  const off = useAction();
  const del = useAction();
  const [deleting, setDeleting] = useState(false);
  const base = repoPath(repo.name);
  return (
    <div class="settings">
      <section class="section" aria-labelledby="desc-h">
        <h2 id="desc-h">Description</h2>
        <ActionForm
          class="form"
          action={desc}
          submit={async () => {
            await api('PUT', `${base}/-/description`, { body: { description } });
            reload();
            return 'Description saved.';
          }}
        >
          <label class="field">
            <span>
              Short description <span class="hint">(at most 100 characters)</span>
            </span>
            <input value={description} maxLength={100} onInput={(e) => setDescription(inputValue(e))} />
          </label>
          <ActionStatus action={desc} />
          <button type="submit" class="btn primary" disabled={desc.busy}>
            Save description
          </button>
        </ActionForm>
      </section>
      <section class="section" aria-labelledby="readme-h">
        <h2 id="readme-h">README</h2>
        <ActionForm
          action={rd}
          submit={async () => {
            await api('PUT', `${base}/-/readme`, { body: { readme } });
            reload();
            return 'README saved.';
          }}
        >
          <label class="field">
            <span>
              README <span class="hint">(Markdown; empty shows the image’s own again)</span>
            </span>
            <textarea value={readme} onInput={(e) => setReadme((e.target as HTMLTextAreaElement).value)} />
          </label>
          <ActionStatus action={rd} />
          <button type="submit" class="btn primary" disabled={rd.busy}>
            Save README
          </button>
        </ActionForm>
      </section>
      <section class="section" aria-labelledby="vis-h">
        <h2 id="vis-h">Visibility</h2>
        <p>
          This repository is <strong>{repo.visibility}</strong>.{' '}
          {repo.visibility === 'public' ? 'Anyone who can reach the registry can pull it and see it.' : 'Only people and teams with access see it; to everyone else it does not exist.'}
        </p>
        <button
          type="button"
          class="btn"
          disabled={vis.busy}
          onClick={() =>
            void vis.run(async () => {
              await api('PATCH', base, { body: { visibility: repo.visibility === 'public' ? 'private' : 'public' } });
              reload();
            })
          }
        >
          Make {repo.visibility === 'public' ? 'private' : 'public'}
        </button>
        <ActionStatus action={vis} />
      </section>
      <section class="section" aria-labelledby="access-h">
        <h2 id="access-h">{repo.owner?.kind === 'org' ? 'Team access' : 'Collaborators'}</h2>
        {repo.owner?.kind === 'org' ? <TeamAccess repo={repo} org={repo.owner.name} /> : repo.owner ? <Collaborators repo={repo} /> : <p class="muted">Administrators own this repository.</p>}
      </section>
      <section class="section" aria-labelledby="hooks-h">
        <h2 id="hooks-h">Webhooks</h2>
        <Webhooks repo={repo} />
      </section>
      {session.me?.admin && (
        <section class="section" aria-labelledby="official-h">
          <h2 id="official-h">Official</h2>
          <p>{repo.is_official ? 'Marked official: it carries the badge and can be filtered for.' : 'Not official.'}</p>
          <button
            type="button"
            class="btn"
            disabled={off.busy}
            onClick={() =>
              void off.run(async () => {
                await api('PUT', `${base}/-/official`, { body: { official: !repo.is_official } });
                reload();
              })
            }
          >
            {repo.is_official ? 'Remove the official flag' : 'Mark official'}
          </button>
          <ActionStatus action={off} />
        </section>
      )}
      <section class="section danger-zone" aria-labelledby="delete-h">
        <h2 id="delete-h">Delete this repository</h2>
        <p>Its tags, manifests and blob links are deleted. This cannot be undone.</p>
        <button type="button" class="btn danger" onClick={() => (del.clear(), setDeleting(true))}>
          Delete repository
        </button>
      </section>
      <Confirm
        open={deleting}
        title={`Delete ${repo.name}?`}
        confirmLabel="Delete repository"
        typed={repo.name}
        busy={del.busy}
        error={del.error}
        onCancel={() => setDeleting(false)}
        onConfirm={() =>
          void del.run(() => api('DELETE', base)).then(async (ok) => {
            if (ok) {
              setDeleting(false);
              await refreshMe().catch(() => {});
              navigate(href(`/u/${encodeURIComponent(repo.namespace)}`));
            }
          })
        }
      >
        <p>Everything in it is deleted. Type its name to confirm.</p>
      </Confirm>
    </div>
  );
}
