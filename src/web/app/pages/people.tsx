/** User and organization pages: their repositories, activity and stars; members and teams for an organization's members (managed by owners). */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiFailure, type Page } from '../api';
import { href, Link, repoHref, type Route } from '../router';
import { useSession } from '../session';
import { ActionForm, ActionStatus, Async, Confirm, CopyButton, Empty, ErrorBox, FollowButton, InviteForm, inputValue, Time, useAction, useApi, useCursorPages, useTitle } from '../ui';
import { ActivityList } from './repository';

interface RepoSummary {
  name: string;
  visibility: 'public' | 'private';
  tags: number;
  createdAt: number;
}

function Repositories({ namespace }: { namespace: string }): JSX.Element {
  const session = useSession();
  const cursor = useCursorPages('Repository pages');
  const last = cursor.last;
  const state = useApi(() => api<Page<RepoSummary>>('GET', 'repositories', { query: { namespace, n: 50, last } }), [namespace, last, session.me?.name]);
  return (
    <Async state={state}>
      {(d) =>
        d.items.length === 0 && cursor.first ? (
          <Empty>No repositories you can see in {namespace}.</Empty>
        ) : (
          <>
            <ul class="results">
              {d.items.map((r) => (
                <li class="card" key={r.name}>
                  <h3>
                    <Link href={repoHref(r.name)}>{r.name}</Link> {r.visibility === 'private' && <span class="badge private">Private</span>}
                  </h3>
                  <p class="meta">
                    <span>{r.tags === 1 ? '1 tag' : `${r.tags} tags`}</span>
                    <span>
                      Created <Time t={r.createdAt} />
                    </span>
                  </p>
                </li>
              ))}
            </ul>
            {cursor.pager(d.next)}
          </>
        )
      }
    </Async>
  );
}

function Starred({ user }: { user: string }): JSX.Element {
  const state = useApi(() => api<Page<{ name: string; starredAt: number }>>('GET', `accounts/${encodeURIComponent(user)}/starred`, { query: { n: 25 } }), [user]);
  return (
    <Async state={state} notFound={<Empty>No stars.</Empty>}>
      {(d) =>
        d.items.length === 0 ? (
          <Empty>No stars yet.</Empty>
        ) : (
          <ul class="plain">
            {d.items.map((s) => (
              <li key={s.name}>
                ★ <Link href={repoHref(s.name)}>{s.name}</Link>{' '}
                <span class="muted">
                  <Time t={s.starredAt} />
                </span>
              </li>
            ))}
          </ul>
        )
      }
    </Async>
  );
}

function UserPage({ name }: { name: string }): JSX.Element {
  useTitle(name);
  const session = useSession();
  const isOrg = session.me?.organizations.includes(name);
  return (
    <>
      <div class="repo-title">
        <h1>{name}</h1>
        <FollowButton kind="account" target={name} me={session.me?.kind === 'user' && session.me.name !== name ? session.me.name : null} />
      </div>
      {isOrg && (
        <p>
          <Link href={href(`/orgs/${encodeURIComponent(name)}`)}>Organization page: members and teams</Link>
        </p>
      )}
      <div class="two-col">
        <section aria-labelledby="repos-h">
          <h2 id="repos-h">Repositories</h2>
          <Repositories namespace={name} />
          <h2>Activity</h2>
          <ActivityList path={`namespaces/${encodeURIComponent(name)}/activity`} showRepo />
        </section>
        <aside class="side" aria-labelledby="stars-h">
          <h2 id="stars-h">Starred</h2>
          <Starred user={name} />
        </aside>
      </div>
    </>
  );
}

interface Team {
  name: string;
  members: string[];
  permissions: { repository: string; permission: string }[];
}

function TeamCard({ org, team, owner, reload }: { org: string; team: string; owner: boolean; reload: () => void }): JSX.Element {
  const base = `orgs/${encodeURIComponent(org)}/teams/${encodeURIComponent(team)}`;
  const state = useApi(() => api<Team>('GET', base), [base]);
  const [member, setMember] = useState('');
  const [repo, setRepo] = useState('*');
  const [perm, setPerm] = useState('read');
  const add = useAction();
  const grant = useAction();
  const del = useAction();
  const [confirm, setConfirm] = useState(false);
  return (
    <li class="card">
      <h3>{team}</h3>
      <Async state={state}>
        {(t) => (
          <>
            <p>
              <strong>Members:</strong> {t.members.length === 0 ? <span class="muted">none</span> : t.members.join(', ')}
            </p>
            <p>
              <strong>Access:</strong>{' '}
              {t.permissions.length === 0 ? <span class="muted">none</span> : t.permissions.map((p) => `${p.repository === '*' ? 'every repository' : p.repository}: ${p.permission}`).join('; ')}
            </p>
            {owner && (
              <>
                <ActionForm
                  class="row"
                  action={add}
                  submit={async () => {
                    await api('PUT', `${base}/members/${encodeURIComponent(member.trim())}`);
                    setMember('');
                    state.reload();
                    reload();
                  }}
                >
                  <label class="field">
                    <span>Add a member to {team}</span>
                    <input required value={member} placeholder="user name" onInput={(e) => setMember(inputValue(e))} />
                  </label>
                  <button type="submit" class="btn" disabled={add.busy}>
                    Add
                  </button>
                </ActionForm>
                <ActionStatus action={add} />
                <ActionForm
                  class="row"
                  action={grant}
                  submit={async () => {
                    await api('PUT', `${base}/permissions`, { body: { repository: repo.trim(), permission: perm } });
                    state.reload();
                  }}
                >
                  <label class="field">
                    <span>Repository of {org} (or *)</span>
                    <input required value={repo} onInput={(e) => setRepo(inputValue(e))} />
                  </label>
                  <label class="field">
                    <span>Permission</span>
                    <select value={perm} onChange={(e) => setPerm((e.target as HTMLSelectElement).value)}>
                      <option value="read">read</option>
                      <option value="write">write</option>
                      <option value="admin">admin</option>
                      <option value="none">none (remove)</option>
                    </select>
                  </label>
                  <button type="submit" class="btn" disabled={grant.busy}>
                    Set access
                  </button>
                </ActionForm>
                <ActionStatus action={grant} />
                {team !== 'owners' && (
                  <button type="button" class="btn small danger" onClick={() => setConfirm(true)}>
                    Delete team
                  </button>
                )}
                <Confirm
                  open={confirm}
                  title={`Delete team ${team}?`}
                  confirmLabel="Delete team"
                  busy={del.busy}
                  error={del.error}
                  onCancel={() => setConfirm(false)}
                  onConfirm={() => void del.run(() => api('DELETE', base)).then((ok) => ok && (setConfirm(false), reload()))}
                >
                  <p>Its members lose the access it gave them.</p>
                </Confirm>
              </>
            )}
          </>
        )}
      </Async>
    </li>
  );
}

interface Robot {
  id: number;
  login: string;
  description: string;
  expiresAt: number | null;
  createdAt: number;
  disabled: boolean;
  permissions: { repository: string; permission: string }[];
  secret?: string;
}

/** An organization's robots (owners): accounts for CI with per-repository permissions; the secret is shown once. */
function Robots({ org }: { org: string }): JSX.Element {
  const base = `orgs/${encodeURIComponent(org)}/robots`;
  const list = useApi(() => api<Page<Robot>>('GET', base, { query: { n: 1000 } }), [base]);
  const [robotName, setRobotName] = useState('');
  const [repo, setRepo] = useState('');
  const [perm, setPerm] = useState('read');
  const [created, setCreated] = useState<Robot | null>(null);
  const action = useAction();
  return (
    <>
      <Async state={list}>
        {(d) =>
          d.items.length === 0 ? (
            <p class="muted">No robots. A robot logs in as ORG+NAME with its secret, for CI.</p>
          ) : (
            <ul class="plain">
              {d.items.map((r) => (
                <li key={r.id} class="row">
                  <span>
                    <code>{r.login}</code> {r.permissions.map((p) => `${p.repository}: ${p.permission}`).join('; ')} {r.disabled && <span class="badge">revoked</span>}
                  </span>
                  {!r.disabled && (
                    <button
                      type="button"
                      class="btn small danger"
                      aria-label={`Revoke robot ${r.login}`}
                      onClick={() => void action.run(async () => (await api('DELETE', `${base}/${encodeURIComponent(r.login.split('+')[1] ?? r.login)}`), list.reload()))}
                    >
                      Revoke
                    </button>
                  )}
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
          const r = await api<Robot>('POST', base, { body: { name: robotName.trim(), permissions: [{ repository: repo.trim(), permission: perm }] } });
          setCreated(r);
          setRobotName('');
          list.reload();
        }}
      >
        <label class="field">
          <span>New robot</span>
          <input required value={robotName} placeholder="ci" onInput={(e) => setRobotName(inputValue(e))} />
        </label>
        <label class="field">
          <span>Robot repository</span>
          <input required value={repo} placeholder={`${org}/app`} onInput={(e) => setRepo(inputValue(e))} />
        </label>
        <label class="field">
          <span>Robot permission</span>
          <select value={perm} onChange={(e) => setPerm((e.target as HTMLSelectElement).value)}>
            <option value="read">read</option>
            <option value="write">write</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" class="btn" disabled={action.busy}>
          Create robot
        </button>
      </ActionForm>
      <ActionStatus action={action} />
      {created?.secret && (
        <div class="alert ok" role="status">
          <p>
            <strong>Robot {created.login} created.</strong> Copy its secret now: it is not shown again.
          </p>
          <div class="secret">
            <code id="new-robot-secret">{created.secret}</code>
            <CopyButton text={created.secret} label="Copy secret" />
          </div>
        </div>
      )}
    </>
  );
}

function OrgPage({ name }: { name: string }): JSX.Element {
  useTitle(name);
  const session = useSession();
  const base = `orgs/${encodeURIComponent(name)}`;
  const org = useApi(
    () => (session.me ? api<{ name: string; role: 'owner' | 'member' }>('GET', base).catch((e: unknown) => (e instanceof ApiFailure && e.status === 404 ? null : Promise.reject(e))) : Promise.resolve(null)),
    [base, session.me?.name],
  );
  const members = useApi(() => (org.data ? api<Page<{ name: string; owner: boolean }>>('GET', `${base}/members`, { query: { n: 1000 } }) : Promise.resolve(null)), [base, org.data?.role]);
  const teams = useApi(() => (org.data ? api<Page<{ name: string }>>('GET', `${base}/teams`, { query: { n: 1000 } }) : Promise.resolve(null)), [base, org.data?.role]);
  const [newMember, setNewMember] = useState('');
  const [newTeam, setNewTeam] = useState('');
  const [removing, setRemoving] = useState<string | null>(null);
  const addMember = useAction();
  const addTeam = useAction();
  const remove = useAction();
  const owner = org.data?.role === 'owner';
  return (
    <>
      <div class="repo-title">
        <h1>
          {name} <span class="badge">Organization</span>
        </h1>
        <FollowButton kind="account" target={name} me={session.me?.kind === 'user' ? session.me.name : null} />
      </div>
      {org.data && <p class="muted">You are {org.data.role === 'owner' ? 'an owner' : 'a member'} of this organization.</p>}
      {org.error ? <ErrorBox error={org.error} /> : null}
      <div class="two-col">
        <section aria-labelledby="org-repos-h">
          <h2 id="org-repos-h">Repositories</h2>
          <Repositories namespace={name} />
          {org.data && (
            <>
              <h2 id="teams-h">Teams</h2>
              <Async state={teams}>
                {(d) =>
                  !d || d.items.length === 0 ? (
                    <Empty>No teams.</Empty>
                  ) : (
                    <ul class="results" aria-labelledby="teams-h">
                      {d.items.map((t) => (
                        <TeamCard key={t.name} org={name} team={t.name} owner={owner} reload={() => (teams.reload(), members.reload())} />
                      ))}
                    </ul>
                  )
                }
              </Async>
              {owner && (
                <ActionForm
                  class="row"
                  action={addTeam}
                  submit={async () => {
                    await api('POST', `${base}/teams`, { body: { name: newTeam.trim() } });
                    setNewTeam('');
                    teams.reload();
                  }}
                >
                  <label class="field">
                    <span>New team</span>
                    <input required value={newTeam} onInput={(e) => setNewTeam(inputValue(e))} />
                  </label>
                  <button type="submit" class="btn" disabled={addTeam.busy}>
                    Create team
                  </button>
                </ActionForm>
              )}
              <ActionStatus action={addTeam} />
            </>
          )}
        </section>
        {org.data && (
          <aside class="side" aria-labelledby="members-h">
            <h2 id="members-h">Members</h2>
            <Async state={members}>
              {(d) =>
                !d || d.items.length === 0 ? (
                  <Empty>No members.</Empty>
                ) : (
                  <ul class="plain">
                    {d.items.map((m) => (
                      <li key={m.name} class="row">
                        <Link href={href(`/u/${encodeURIComponent(m.name)}`)}>{m.name}</Link>
                        {m.owner && <span class="badge">owner</span>}
                        {owner && (
                          <button type="button" class="btn small danger" aria-label={`Remove ${m.name} from ${name}`} onClick={() => (remove.clear(), setRemoving(m.name))}>
                            Remove
                          </button>
                        )}
                      </li>
                    ))}
                  </ul>
                )
              }
            </Async>
            {owner && (
              <ActionForm
                class="row"
                action={addMember}
                submit={async () => {
                  await api('PUT', `${base}/members/${encodeURIComponent(newMember.trim())}`);
                  setNewMember('');
                  members.reload();
                }}
              >
                <label class="field">
                  <span>Add a member</span>
                  <input required value={newMember} placeholder="user name" onInput={(e) => setNewMember(inputValue(e))} />
                </label>
                <button type="submit" class="btn" disabled={addMember.busy}>
                  Add
                </button>
              </ActionForm>
            )}
            <ActionStatus action={addMember} />
            {owner && (
              <>
                <h2 id="robots-h">Robots</h2>
                <Robots org={name} />
                <h2>Invite to {name}</h2>
                <InviteForm organization={name} />
              </>
            )}
          </aside>
        )}
      </div>
      <Confirm
        open={removing !== null}
        title={`Remove ${removing ?? ''} from ${name}?`}
        confirmLabel="Remove"
        busy={remove.busy}
        error={remove.error}
        onCancel={() => setRemoving(null)}
        onConfirm={() =>
          void remove.run(() => api('DELETE', `${base}/members/${encodeURIComponent(removing!)}`)).then((ok) => {
            if (ok) {
              setRemoving(null);
              members.reload();
              teams.reload();
            }
          })
        }
      >
        <p>They leave the organization and all its teams.</p>
      </Confirm>
    </>
  );
}

export function PeoplePages({ route }: { route: Route }): JSX.Element {
  if (route.page === 'org') return <OrgPage name={route.name} />;
  return <UserPage name={route.page === 'user' ? route.name : ''} />;
}

