/**
 * `berth user …`, `berth org …`, `berth token …`: the Hub's accounts from
 * the command line, against the configured metadata database (the server
 * may be running). Passwords are never arguments: read from standard input
 * when it is not a terminal (first line), else prompted for without echo.
 * Secrets (tokens) are printed once, alone on standard output.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, parseDuration, type Config } from '../config/index.js';
import { checkDataDirectory } from '../config/datadir.js';
import { MetadataStore } from '../metadata/store.js';
import { canonicalRepositoryName, CLI, createHub, HubError, type Hub } from '../hub/index.js';
import { UsageError, type CommandName } from './usage.js';

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
  /** Every value of each flag given more than once (--grant A --grant B). */
  all: Map<string, string[]>;
}

/** Splits arguments into positionals and --flags; `withValue` flags take the next argument (or `=value`). */
function parse(command: CommandName, args: string[], withValue: string[], bare: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const all = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (withValue.includes(name)) {
      const value = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (value === undefined || value === '') throw new UsageError(command, `${name} needs a value`);
      flags.set(name, value);
      all.set(name, [...(all.get(name) ?? []), value]);
    } else if (bare.includes(name) && eq < 0) flags.set(name, true);
    else throw new UsageError(command, `unknown option ${a}`);
  }
  return { positional, flags, all };
}

function expect(command: CommandName, p: Parsed, names: string[]): string[] {
  if (p.positional.length !== names.length) {
    throw new UsageError(command, p.positional.length < names.length ? `missing ${names.slice(p.positional.length).join(' ')}` : `unexpected argument ${p.positional[names.length]}`);
  }
  return p.positional;
}

/** `30d`, `12h`, `90m`, or any Go duration. */
export function parseExpiry(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  const ms = days ? Number(days[1]) * 86_400_000 : parseDuration(text, '--expires');
  if (!(ms > 0)) throw new Error(`--expires: must be longer than zero, got ${text}`);
  return ms;
}

async function openHub(file: string | undefined): Promise<{ hub: Hub; config: Config; close(): Promise<void> }> {
  const { config } = await loadConfig(file);
  let sqlitePath = ':memory:';
  if (config.berth.database.url === undefined) {
    if (config.storage.driver === 'inmemory') throw new Error('the in-memory storage driver keeps no accounts: configure a filesystem root or berth.database.url');
    const root = config.storage.filesystem.rootdirectory;
    await checkDataDirectory(root, { databaseOnly: true });
    sqlitePath = path.join(root, 'berth.db');
  }
  const store = await MetadataStore.open({ url: config.berth.database.url, sqlitePath });
  const a = config.auth.accounts;
  if (!a) process.stderr.write('note: auth.accounts is not configured; accounts take effect once it is\n');
  const hub = createHub(store, a ? { registration: a.registration, defaultVisibility: a.defaultvisibility, anonymousPull: a.anonymouspull, refreshLifetimeMs: a.refreshlifetime } : {});
  return { hub, config, close: () => store.close() };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The new password: the first line of standard input, or typed twice at a terminal. */
async function newPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = (await readStdin()).split(/\r?\n/)[0] ?? '';
    if (line === '') throw new Error('no password on standard input (pipe it in, or run at a terminal to be asked)');
    return line;
  }
  const first = await promptHidden('Password: ');
  const again = await promptHidden('Retype password: ');
  if (first !== again) throw new Error('the passwords do not match');
  return first;
}

async function withHub(file: string | undefined, fn: (hub: Hub) => Promise<void>): Promise<number> {
  const { hub, close } = await openHub(file);
  try {
    await fn(hub);
    return 0;
  } catch (err) {
    if (err instanceof HubError) {
      console.error(`berth: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await close();
  }
}

const config = (p: Parsed) => (typeof p.flags.get('--config') === 'string' ? (p.flags.get('--config') as string) : undefined);

export async function userCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const p = parse('user', rest, ['--email', '--config'], ['--admin']);
      const [name] = expect('user', p, ['NAME']);
      const email = p.flags.get('--email');
      const password = await newPassword();
      return withHub(config(p), async (hub) => {
        const a = await hub.accounts.create({ name: name!, password, admin: p.flags.has('--admin'), email: typeof email === 'string' ? email : null }, CLI);
        console.log(`created user ${a.name}${a.admin ? ' (administrator)' : ''}`);
      });
    }
    case 'passwd': {
      const p = parse('user', rest, ['--config'], []);
      const [name] = expect('user', p, ['NAME']);
      const password = await newPassword();
      return withHub(config(p), async (hub) => {
        await hub.accounts.changePassword(name!, password, CLI);
        console.log(`password of ${name} changed; its sessions (refresh tokens) were ended`);
      });
    }
    case 'del': {
      const p = parse('user', rest, ['--config'], []);
      const [name] = expect('user', p, ['NAME']);
      return withHub(config(p), async (hub) => {
        await hub.accounts.delete(name!, CLI);
        console.log(`deleted ${name}`);
      });
    }
    case 'list': {
      const p = parse('user', rest, ['--config'], []);
      expect('user', p, []);
      return withHub(config(p), async (hub) => {
        for (let after = ''; ; ) {
          const page = await hub.accounts.list({ after, limit: 500 });
          for (const a of page) console.log([a.name, a.kind === 'org' ? 'organization' : a.admin ? 'administrator' : 'user', a.email ?? '', a.disabled ? 'disabled' : ''].join('\t').trimEnd());
          if (page.length < 500) break;
          after = page[page.length - 1]!.name;
        }
      });
    }
    case 'import': {
      const p = parse('user', rest, ['--config'], []);
      const [format, file] = expect('user', p, ['htpasswd', 'FILE']);
      if (format !== 'htpasswd') throw new UsageError('user', `can import only from htpasswd, not ${format}`);
      const text = await readFile(file!, 'utf8');
      return withHub(config(p), async (hub) => {
        const r = await hub.accounts.importHtpasswd(text, CLI);
        for (const s of r.skipped) console.error(`${file}:${s.line}: skipped ${JSON.stringify(s.user)}: ${s.reason}`);
        console.log(`imported ${r.imported.length} users${r.imported.length ? `: ${r.imported.join(', ')}` : ''}; skipped ${r.skipped.length}`);
      });
    }
    case undefined:
      throw new UsageError('user', 'missing subcommand');
    default:
      throw new UsageError('user', `unknown subcommand "${sub}"`);
  }
}

export async function orgCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('org', 'missing subcommand');
  if (sub === 'member') {
    const [action, ...more] = rest;
    if (action !== 'add' && action !== 'del') throw new UsageError('org', action === undefined ? 'missing add or del after member' : `unknown subcommand "member ${action}"`);
    const p = parse('org', more, ['--config'], []);
    const [org, user] = expect('org', p, ['ORG', 'USER']);
    return withHub(config(p), async (hub) => {
      if (action === 'add') {
        await hub.organizations.addMember(org!, user!, CLI);
        console.log(`${user} is a member of ${org}`);
      } else {
        await hub.organizations.removeMember(org!, user!, CLI);
        console.log(`${user} left ${org} and its teams`);
      }
    });
  }
  if (sub !== 'add') throw new UsageError('org', `unknown subcommand "${sub}"`);
  const p = parse('org', rest, ['--owner', '--config'], []);
  const [name] = expect('org', p, ['NAME']);
  const owner = p.flags.get('--owner');
  if (typeof owner !== 'string') throw new UsageError('org', 'missing --owner USER');
  return withHub(config(p), async (hub) => {
    await hub.organizations.create(name!, owner, CLI, { adopt: true });
    console.log(`created organization ${name}, owned by ${owner}`);
  });
}

export async function teamCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const p = parse('team', rest, ['--config'], []);
      const [org, team] = expect('team', p, ['ORG', 'TEAM']);
      return withHub(config(p), async (hub) => {
        await hub.organizations.createTeam(org!, team!, CLI);
        console.log(`created team ${org}/${team}`);
      });
    }
    case 'del': {
      const p = parse('team', rest, ['--config'], []);
      const [org, team] = expect('team', p, ['ORG', 'TEAM']);
      return withHub(config(p), async (hub) => {
        await hub.organizations.deleteTeam(org!, team!, CLI);
        console.log(`deleted team ${org}/${team}`);
      });
    }
    case 'member': {
      const [action, ...more] = rest;
      if (action !== 'add' && action !== 'del') throw new UsageError('team', action === undefined ? 'missing add or del after member' : `unknown subcommand "member ${action}"`);
      const p = parse('team', more, ['--config'], []);
      const [org, team, user] = expect('team', p, ['ORG', 'TEAM', 'USER']);
      return withHub(config(p), async (hub) => {
        if (action === 'add') {
          await hub.organizations.addTeamMember(org!, team!, user!, CLI);
          console.log(`${user} is in ${org}/${team}`);
        } else {
          await hub.organizations.removeTeamMember(org!, team!, user!, CLI);
          console.log(`${user} left ${org}/${team}`);
        }
      });
    }
    case 'grant': {
      const p = parse('team', rest, ['--config'], []);
      const [org, team, repository, permission] = expect('team', p, ['ORG', 'TEAM', 'REPOSITORY', 'PERMISSION']);
      return withHub(config(p), async (hub) => {
        await hub.organizations.setTeamPermission(org!, team!, repository!, permission!, CLI);
        console.log(permission === 'none' ? `${org}/${team} holds nothing on ${repository} now` : `${org}/${team} holds ${permission} on ${repository}`);
      });
    }
    case undefined:
      throw new UsageError('team', 'missing subcommand');
    default:
      throw new UsageError('team', `unknown subcommand "${sub}"`);
  }
}

function expiry(command: CommandName, p: Parsed): number | null {
  const expires = p.flags.get('--expires');
  try {
    return typeof expires === 'string' ? parseExpiry(expires) : null;
  } catch (err) {
    throw new UsageError(command, (err as Error).message);
  }
}

export async function robotCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'add': {
      const p = parse('robot', rest, ['--grant', '--expires', '--description', '--config'], []);
      const [org, name] = expect('robot', p, ['ORG', 'NAME']);
      const permissions = (p.all.get('--grant') ?? []).map((g) => {
        const colon = g.lastIndexOf(':');
        if (colon <= 0) throw new UsageError('robot', `--grant takes REPOSITORY:PERMISSION, got ${g}`);
        return { repository: g.slice(0, colon), permission: g.slice(colon + 1) };
      });
      const expiresInMs = expiry('robot', p);
      const description = p.flags.get('--description');
      return withHub(config(p), async (hub) => {
        const r = await hub.robots.create(org!, { name: name!, description: typeof description === 'string' ? description : '', expiresInMs, permissions }, CLI);
        const grants = r.permissions.map((x) => `${x.repository}:${x.permission}`).join(', ') || 'no permissions yet';
        process.stderr.write(`robot ${r.login} (${grants}${r.expiresAt ? `, expires ${new Date(r.expiresAt).toISOString()}` : ''}); the secret is shown once:\n`);
        console.log(r.secret);
      });
    }
    case 'del': {
      const p = parse('robot', rest, ['--config'], ['--purge']);
      const [org, name] = expect('robot', p, ['ORG', 'NAME']);
      return withHub(config(p), async (hub) => {
        if (p.flags.has('--purge')) {
          await hub.robots.delete(org!, name!, CLI);
          console.log(`deleted robot ${org}+${name}`);
        } else {
          await hub.robots.disable(org!, name!, CLI);
          console.log(`revoked robot ${org}+${name} (disabled; --purge deletes it)`);
        }
      });
    }
    case 'list': {
      const p = parse('robot', rest, ['--config'], []);
      const [org] = expect('robot', p, ['ORG']);
      return withHub(config(p), async (hub) => {
        for (const r of await hub.robots.list(org!)) {
          const grants = r.permissions.map((x) => `${x.repository}:${x.permission}`).join(',');
          console.log([r.login, r.disabled ? 'disabled' : 'active', r.expiresAt ? new Date(r.expiresAt).toISOString() : 'never', grants].join('\t'));
        }
      });
    }
    case undefined:
      throw new UsageError('robot', 'missing subcommand');
    default:
      throw new UsageError('robot', `unknown subcommand "${sub}"`);
  }
}

export async function repoCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('repo', 'missing subcommand');
  if (sub !== 'visibility') throw new UsageError('repo', `unknown subcommand "${sub}"`);
  const p = parse('repo', rest, ['--config'], []);
  const [name, visibility] = expect('repo', p, ['NAME', 'VISIBILITY']);
  if (visibility !== 'public' && visibility !== 'private') throw new UsageError('repo', `visibility is public or private, not ${visibility}`);
  return withHub(config(p), async (hub) => {
    const canonical = canonicalRepositoryName(name!);
    await hub.repositories.setVisibility(canonical, visibility, CLI);
    console.log(`${canonical} is ${visibility}`);
  });
}

export async function collaboratorCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'add' && sub !== 'del') throw new UsageError('collaborator', sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"`);
  const p = parse('collaborator', rest, ['--config'], []);
  const [repository, user, permission] = expect('collaborator', p, sub === 'add' ? ['REPOSITORY', 'USER', 'PERMISSION'] : ['REPOSITORY', 'USER']);
  if (sub === 'add' && !['read', 'write', 'admin'].includes(permission!)) throw new UsageError('collaborator', `permission is read, write or admin, not ${permission}`);
  return withHub(config(p), async (hub) => {
    if (sub === 'add') {
      await hub.repositories.setCollaborator(repository!, user!, permission!, CLI);
      console.log(`${user} holds ${permission} on ${repository}`);
    } else {
      if (!(await hub.repositories.collaborators(repository!)).some((c) => c.name === user)) throw new HubError('NOT_FOUND', `${user} is no collaborator on ${repository}`);
      await hub.repositories.setCollaborator(repository!, user!, 'none', CLI);
      console.log(`${user} is no longer a collaborator on ${repository}`);
    }
  });
}

export async function inviteCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('invite', 'missing subcommand');
  if (sub !== 'add') throw new UsageError('invite', `unknown subcommand "${sub}"`);
  const p = parse('invite', rest, ['--email', '--expires', '--config'], []);
  expect('invite', p, []);
  const email = p.flags.get('--email');
  const lifetimeMs = expiry('invite', p) ?? undefined;
  return withHub(config(p), async (hub) => {
    if (hub.settings.registration !== 'invite') process.stderr.write('note: auth.accounts.registration is not invite; the code is used only when it is\n');
    const i = await hub.accounts.invite({ email: typeof email === 'string' ? email : null, lifetimeMs }, CLI);
    process.stderr.write(`invitation${typeof email === 'string' ? ` for ${email}` : ''}, valid until ${new Date(i.expiresAt).toISOString()}; the code is shown once:\n`);
    console.log(i.code);
  });
}

/** `--since`: a duration back from now (24h, 7d), an ISO 8601 date, or milliseconds since the epoch. */
export function parseSince(text: string, now = Date.now()): number {
  if (/^\d{12,15}$/.test(text)) return Number(text);
  const iso = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isNaN(iso)) return iso;
  try {
    return now - parseExpiry(text);
  } catch {
    throw new Error(`--since: a duration (24h, 7d), an ISO 8601 date or milliseconds, not ${text}`);
  }
}

export async function auditCommand(args: string[]): Promise<number> {
  const p = parse('audit', args, ['--since', '--actor', '--action', '--config', '-n'], []);
  expect('audit', p, []);
  const actor = p.flags.get('--actor');
  const action = p.flags.get('--action');
  let since: number | undefined;
  try {
    since = typeof p.flags.get('--since') === 'string' ? parseSince(p.flags.get('--since') as string) : undefined;
  } catch (err) {
    throw new UsageError('audit', (err as Error).message);
  }
  const n = p.flags.get('-n');
  const max = typeof n === 'string' ? Number(n) : Infinity;
  if (typeof n === 'string' && !(Number.isInteger(max) && max > 0)) throw new UsageError('audit', `-n takes a positive number, not ${n}`);
  return withHub(config(p), async (hub) => {
    let shown = 0;
    // Newest first: past --since, every later page is older still.
    for (let before: number | undefined; ; ) {
      const page = await hub.audit.read({ before, limit: 500, actor: typeof actor === 'string' ? actor : undefined });
      for (const e of page.entries) {
        if (since !== undefined && e.at < since) return;
        if (typeof action === 'string' && e.action !== action) continue;
        console.log([new Date(e.at).toISOString(), e.actor ?? '-', e.action, e.target ?? '-', e.client ?? '-', e.requestId ?? '-', e.detail ? JSON.stringify(e.detail) : ''].join('\t').trimEnd());
        if (++shown >= max) return;
      }
      if (page.next === null) return;
      before = page.next;
    }
  });
}

export async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined) throw new UsageError('token', 'missing subcommand');
  if (sub !== 'add') throw new UsageError('token', `unknown subcommand "${sub}"`);
  const p = parse('token', rest, ['--scope', '--expires', '--config'], []);
  const [user, name] = expect('token', p, ['USER', 'NAME']);
  const scope = p.flags.get('--scope');
  if (typeof scope !== 'string') throw new UsageError('token', 'missing --scope (read, write, delete; comma-separated)');
  const expires = p.flags.get('--expires');
  let expiresInMs: number | null = null;
  try {
    expiresInMs = typeof expires === 'string' ? parseExpiry(expires) : null;
  } catch (err) {
    throw new UsageError('token', (err as Error).message);
  }
  return withHub(config(p), async (hub) => {
    const t = await hub.tokens.create(user!, { name: name!, scopes: scope.split(',').map((s) => s.trim()), expiresInMs }, CLI);
    process.stderr.write(`token ${t.id} "${t.name}" for ${user} (${t.scopes.join(', ')}${t.expiresAt ? `, expires ${new Date(t.expiresAt).toISOString()}` : ''}); the secret is shown once:\n`);
    console.log(t.secret);
  });
}
