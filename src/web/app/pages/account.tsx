/** Log in, register, the account (password, email, organizations) and personal access tokens. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiFailure, type Page, type Token } from '../api';
import { href, Link, navigate, useLocation, type Route } from '../router';
import { logIn, refreshMe, useSession } from '../session';
import { ActionForm, ActionStatus, Async, Confirm, CopyButton, Empty, ErrorBox, inputValue, Time, useAction, useApi, useTitle } from '../ui';

/** Where to go after logging in: a path of this UI only (never another origin). */
function nextTarget(query: URLSearchParams): string {
  const next = query.get('next');
  return next && next.startsWith('/') && !next.startsWith('//') ? next : href('/');
}

function LoginPage(): JSX.Element {
  useTitle('Log in');
  const { query } = useLocation();
  const session = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const action = useAction();
  if (!session.accounts) return <ErrorBox error={new Error('This registry runs without accounts: there is nothing to log in to.')} />;
  return (
    <div class="form-card">
      <h1>Log in</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.run(() => logIn(username.trim(), password)).then((ok) => ok && navigate(nextTarget(query)));
        }}
      >
        <label class="field">
          <span>User name</span>
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(inputValue(e))} />
        </label>
        <label class="field">
          <span>Password</span>
          <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(inputValue(e))} />
        </label>
        {action.error ? <ErrorBox error={action.error instanceof ApiFailure && action.error.status === 401 ? new Error('Incorrect user name or password.') : action.error} /> : null}
        <div class="actions">
          <button type="submit" class="btn primary" disabled={action.busy}>
            {action.busy ? 'Logging in…' : 'Log in'}
          </button>
        </div>
      </form>
      <p class="muted">
        No account? <Link href={href('/register')}>Register</Link>
      </p>
    </div>
  );
}

function RegisterPage(): JSX.Element {
  useTitle('Register');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [invitation, setInvitation] = useState('');
  const action = useAction();
  return (
    <div class="form-card">
      <h1>Create an account</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action
            .run(async () => {
              await api('POST', 'accounts', { body: { name: name.trim(), password, email: email.trim() || undefined, invitation: invitation.trim() || undefined } });
              await logIn(name.trim(), password);
            })
            .then((ok) => ok && navigate(href(`/u/${encodeURIComponent(name.trim())}`)));
        }}
      >
        <label class="field">
          <span>
            User name <span class="hint">(lower-case letters, digits, . _ -)</span>
          </span>
          <input name="username" autoComplete="username" required minLength={2} maxLength={64} value={name} onInput={(e) => setName(inputValue(e))} />
        </label>
        <label class="field">
          <span>
            Email <span class="hint">(optional)</span>
          </span>
          <input name="email" type="email" autoComplete="email" value={email} onInput={(e) => setEmail(inputValue(e))} />
        </label>
        <label class="field">
          <span>
            Password <span class="hint">(at least 8 characters)</span>
          </span>
          <input name="password" type="password" autoComplete="new-password" required minLength={8} value={password} onInput={(e) => setPassword(inputValue(e))} />
        </label>
        <label class="field">
          <span>
            Invitation code <span class="hint">(if registration is by invitation)</span>
          </span>
          <input name="invitation" autoComplete="off" value={invitation} onInput={(e) => setInvitation(inputValue(e))} />
        </label>
        {action.error ? (
          <ErrorBox error={action.error instanceof ApiFailure && action.error.code === 'REGISTRATION_CLOSED' ? new Error('Registration is closed on this registry: ask an administrator for an account.') : action.error} />
        ) : null}
        <div class="actions">
          <button type="submit" class="btn primary" disabled={action.busy}>
            Register
          </button>
        </div>
      </form>
      <p class="muted">
        Have an account? <Link href={href('/login')}>Log in</Link>
      </p>
    </div>
  );
}

function LoginFirst(): JSX.Element {
  return (
    <section class="notfound">
      <h1>Log in first</h1>
      <p>
        <Link href={href(`/login?next=${encodeURIComponent(location.pathname)}`)} class="btn primary">
          Log in
        </Link>
      </p>
    </section>
  );
}

function AccountPage(): JSX.Element {
  useTitle('Account');
  const session = useSession();
  const me = session.me;
  const pw = useAction();
  const mail = useAction();
  const org = useAction();
  const [current, setCurrent] = useState('');
  const [password, setPassword] = useState('');
  const [email, setEmail] = useState(me?.email ?? '');
  const [orgName, setOrgName] = useState('');
  if (!me) return <LoginFirst />;
  const self = `accounts/${encodeURIComponent(me.name)}`;
  return (
    <>
      <h1>Account: {me.name}</h1>
      <p class="muted">
        {me.admin ? 'Administrator. ' : ''}
        <Link href={href(`/u/${encodeURIComponent(me.name)}`)}>Your repositories</Link> · <Link href={href('/account/tokens')}>Access tokens</Link>
      </p>
      <section class="section" aria-labelledby="pw-h">
        <h2 id="pw-h">Change password</h2>
        <ActionForm
          class="form"
          action={pw}
          submit={async () => {
            await api('PUT', `${self}/password`, { body: { current, password } });
            setCurrent('');
            setPassword('');
            return 'Password changed. Other sessions and tokens made with the old one have ended; log in again where needed.';
          }}
        >
          <label class="field">
            <span>Current password</span>
            <input type="password" autoComplete="current-password" required value={current} onInput={(e) => setCurrent(inputValue(e))} />
          </label>
          <label class="field">
            <span>New password</span>
            <input type="password" autoComplete="new-password" minLength={8} required value={password} onInput={(e) => setPassword(inputValue(e))} />
          </label>
          <ActionStatus action={pw} />
          <button type="submit" class="btn primary" disabled={pw.busy}>
            Change password
          </button>
        </ActionForm>
      </section>
      <section class="section" aria-labelledby="mail-h">
        <h2 id="mail-h">Email</h2>
        <ActionForm
          class="form"
          action={mail}
          submit={async () => {
            await api('PUT', `${self}/email`, { body: { email: email.trim() || null } });
            await refreshMe();
            return email.trim() ? 'Email saved.' : 'Email removed.';
          }}
        >
          <label class="field">
            <span>Email address</span>
            <input type="email" autoComplete="email" value={email} onInput={(e) => setEmail(inputValue(e))} />
          </label>
          <ActionStatus action={mail} />
          <button type="submit" class="btn primary" disabled={mail.busy}>
            Save email
          </button>
        </ActionForm>
      </section>
      <section class="section" aria-labelledby="orgs-h">
        <h2 id="orgs-h">Organizations</h2>
        {me.organizations.length === 0 ? (
          <p class="muted">You are in no organization.</p>
        ) : (
          <ul>
            {me.organizations.map((o) => (
              <li key={o}>
                <Link href={href(`/orgs/${encodeURIComponent(o)}`)}>{o}</Link>
              </li>
            ))}
          </ul>
        )}
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault();
            const name = orgName.trim();
            void org
              .run(async () => {
                await api('POST', 'orgs', { body: { name } });
                await refreshMe();
              })
              .then((ok) => ok && navigate(href(`/orgs/${encodeURIComponent(name)}`)));
          }}
        >
          <label class="field">
            <span>New organization</span>
            <input required value={orgName} onInput={(e) => setOrgName(inputValue(e))} />
          </label>
          <button type="submit" class="btn" disabled={org.busy}>
            Create organization
          </button>
        </form>
        <ActionStatus action={org} />
      </section>
    </>
  );
}

const EXPIRIES = [
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['365d', 'One year'],
  ['', 'Never'],
] as const;

function TokensPage(): JSX.Element {
  useTitle('Access tokens');
  const session = useSession();
  const me = session.me;
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(['read']);
  const [expires, setExpires] = useState('90d');
  const [created, setCreated] = useState<Token | null>(null);
  const [revoking, setRevoking] = useState<Token | null>(null);
  const create = useAction();
  const revoke = useAction();
  const path = me ? `accounts/${encodeURIComponent(me.name)}/tokens` : '';
  const list = useApi(() => (me ? api<Page<Token>>('GET', path, { query: { n: 1000 } }) : Promise.resolve({ items: [], next: null })), [path]);
  if (!me) return <LoginFirst />;
  const toggle = (s: string) => setScopes(scopes.includes(s) ? scopes.filter((x) => x !== s) : [...scopes, s]);
  return (
    <>
      <h1>Personal access tokens</h1>
      <p class="muted">
        Use a token as the password of <code>docker login</code> or of the API. It can do what you can, within its scopes.
      </p>
      <section class="section" aria-labelledby="new-h">
        <h2 id="new-h">New token</h2>
        <ActionForm
          class="form"
          action={create}
          submit={async () => {
            const t = await api<Token>('POST', path, { body: { name: name.trim(), scopes, expiresIn: expires || undefined } });
            setCreated(t);
            setName('');
            list.reload();
          }}
        >
          <label class="field">
            <span>Name</span>
            <input required maxLength={100} value={name} placeholder="e.g. laptop, CI" onInput={(e) => setName(inputValue(e))} />
          </label>
          <fieldset class="field">
            <legend>
              <strong>Scopes</strong>
            </legend>
            {(['read', 'write', 'delete'] as const).map((s) => (
              <label class="check" key={s}>
                <input type="checkbox" checked={scopes.includes(s)} onChange={() => toggle(s)} /> {s === 'read' ? 'Read (pull)' : s === 'write' ? 'Write (push)' : 'Delete and administer'}
              </label>
            ))}
          </fieldset>
          <label class="field">
            <span>Expires</span>
            <select value={expires} onChange={(e) => setExpires((e.target as HTMLSelectElement).value)}>
              {EXPIRIES.map(([v, l]) => (
                <option key={v} value={v}>
                  {l}
                </option>
              ))}
            </select>
          </label>
          <ActionStatus action={create} />
          <button type="submit" class="btn primary" disabled={create.busy || scopes.length === 0}>
            Create token
          </button>
        </ActionForm>
        {created?.secret && (
          <div class="alert ok" role="status">
            <p>
              <strong>Token “{created.name}” created.</strong> Copy it now: it is not shown again.
            </p>
            <div class="secret">
              <code id="new-token-secret">{created.secret}</code>
              <CopyButton text={created.secret} label="Copy token" />
            </div>
            <p class="muted">
              <code>
                docker login {location.host} -u {me.name}
              </code>{' '}
              and paste it as the password.
            </p>
          </div>
        )}
      </section>
      <section class="section" aria-labelledby="list-h">
        <h2 id="list-h">Your tokens</h2>
        <Async state={list}>
          {(d) =>
            d.items.length === 0 ? (
              <Empty>No tokens yet.</Empty>
            ) : (
              <div class="table-wrap">
                <table class="table">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Scopes</th>
                      <th scope="col">Created</th>
                      <th scope="col">Last used</th>
                      <th scope="col">Expires</th>
                      <th scope="col">
                        <span class="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.items.map((t) => (
                      <tr key={t.id}>
                        <th scope="row">{t.name}</th>
                        <td>{t.scopes.join(', ')}</td>
                        <td>
                          <Time t={t.createdAt} />
                        </td>
                        <td>
                          <Time t={t.lastUsedAt} />
                        </td>
                        <td>{t.expiresAt === null ? 'never' : <Time t={t.expiresAt} />}</td>
                        <td>
                          {t.revoked ? (
                            <span class="badge">Revoked</span>
                          ) : (
                            <button type="button" class="btn small danger" aria-label={`Revoke token ${t.name}`} onClick={() => (revoke.clear(), setRevoking(t))}>
                              Revoke
                            </button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Async>
      </section>
      <Confirm
        open={revoking !== null}
        title={`Revoke token ${revoking?.name ?? ''}?`}
        confirmLabel="Revoke"
        busy={revoke.busy}
        error={revoke.error}
        onCancel={() => setRevoking(null)}
        onConfirm={() =>
          void revoke.run(() => api('DELETE', `${path}/${revoking!.id}`)).then((ok) => {
            if (ok) {
              setRevoking(null);
              list.reload();
            }
          })
        }
      >
        <p>Whatever uses it stops working at once.</p>
      </Confirm>
    </>
  );
}

export function AccountPages({ route }: { route: Route }): JSX.Element {
  switch (route.page) {
    case 'login':
      return <LoginPage />;
    case 'register':
      return <RegisterPage />;
    case 'tokens':
      return <TokensPage />;
    default:
      return <AccountPage />;
  }
}
