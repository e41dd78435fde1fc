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
import { CLI, createHub, HubError, type Hub } from '../hub/index.js';
import { UsageError, type CommandName } from './usage.js';

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Splits arguments into positionals and --flags; `withValue` flags take the next argument (or `=value`). */
function parse(command: CommandName, args: string[], withValue: string[], bare: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
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
    } else if (bare.includes(name) && eq < 0) flags.set(name, true);
    else throw new UsageError(command, `unknown option ${a}`);
  }
  return { positional, flags };
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
  if (sub !== 'add') throw new UsageError('org', `unknown subcommand "${sub}"`);
  const p = parse('org', rest, ['--owner', '--config'], []);
  const [name] = expect('org', p, ['NAME']);
  const owner = p.flags.get('--owner');
  if (typeof owner !== 'string') throw new UsageError('org', 'missing --owner USER');
  return withHub(config(p), async (hub) => {
    await hub.organizations.create(name!, owner, CLI);
    console.log(`created organization ${name}, owned by ${owner}`);
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
