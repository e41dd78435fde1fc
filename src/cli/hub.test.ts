/**
 * `berth user|org|token` run as the compiled CLI against a data directory
 * (SQLite), and once against PostgreSQL; what they wrote is checked through
 * the Hub on the same database.
 */
import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { startPostgres, type PostgresServer } from '../../test/support/postgres.js';
import { createHub } from '../hub/index.js';
import { MetadataStore } from '../metadata/store.js';
import { runCli } from '../../test/support/cli.js';

const berth = runCli;

describe('berth user | org | token (SQLite data directory)', () => {
  let work: string;
  let root: string;
  let env: NodeJS.ProcessEnv;
  const open = () => MetadataStore.open({ sqlitePath: path.join(root, 'berth.db') });
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-cli-hub-'));
    root = path.join(work, 'data');
    env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_AUTH: 'accounts' };
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('answers --help for every command without touching the data', async () => {
    for (const [args, usage] of [
      [['user', '--help'], /^usage: berth user <subcommand>/],
      [['user', 'add', '-h'], /^usage: berth user <subcommand>/],
      [['org', '--help'], /^usage: berth org <subcommand>/],
      [['token', 'add', '--help'], /^usage: berth token add USER NAME --scope/],
      [['help', 'user'], /^usage: berth user/],
    ] as const) {
      const r = await berth(env, [...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, usage);
      assert.match(r.stdout, /-h, --help/);
    }
    await assert.rejects(access(root), 'no data directory was created');
  });

  it('refuses unknown subcommands and options, and passwords as arguments, with the usage (exit 2)', async () => {
    for (const args of [['user'], ['user', 'rename', 'x'], ['user', 'add', 'alice', 'hunter2hunter2'], ['user', 'add', 'alice', '--password', 'x'], ['org', 'add', 'acme'], ['token', 'add', 'alice'], ['token', 'add', 'a', 'b', '--scope', 'read', '--expires', 'soon']]) {
      const r = await berth(env, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^berth ${args[0]}: .*\\n\\nusage: berth ${args[0]}`));
    }
  });

  it('adds users with the password from standard input, lists them, changes a password', async () => {
    let r = await berth(env, ['user', 'add', 'root-admin', '--admin', '--email', 'ops@example.org'], 'first password\nignored second line\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'created user root-admin (administrator)\n');
    r = await berth(env, ['user', 'add', 'alice'], 'alice password\n');
    assert.equal(r.code, 0, r.stderr);
    r = await berth(env, ['user', 'add', 'alice'], 'alice password\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the name alice is taken/);
    r = await berth(env, ['user', 'add', 'nopass'], '');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no password on standard input/);
    r = await berth(env, ['user', 'add', 'Bad Name'], 'whatever password\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /name "Bad Name" must be/);

    r = await berth(env, ['user', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'alice\tuser\nroot-admin\tadministrator\tops@example.org\n');

    r = await berth(env, ['user', 'passwd', 'alice'], 'second password\n');
    assert.equal(r.code, 0, r.stderr);
    const store = await open();
    try {
      const hub = createHub(store);
      assert.equal(await hub.verifier.verify('alice', 'alice password', '127.0.0.1'), null);
      assert.equal((await hub.verifier.verify('alice', 'second password', '127.0.0.1'))?.kind, 'user');
      assert.deepEqual(await hub.verifier.verify('root-admin', 'first password', '127.0.0.1'), { kind: 'user', id: 1, name: 'root-admin', admin: true });
      const log = await hub.audit.read();
      assert.ok(log.entries.some((e) => e.action === 'account.password' && e.target === 'alice' && e.client === 'cli'));
    } finally {
      await store.close();
    }
  });

  it('creates a token and prints its secret once, alone on standard output', async () => {
    const r = await berth(env, ['token', 'add', 'alice', 'ci', '--scope', 'read,write', '--expires', '30d']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bpat_[A-Za-z0-9_-]{43}\n$/);
    assert.match(r.stderr, /token \d+ "ci" for alice \(read, write, expires \d{4}-/);
    const store = await open();
    try {
      const hub = createHub(store);
      const p = await hub.verifier.verify('alice', r.stdout.trim(), '127.0.0.1');
      assert.deepEqual(p?.kind === 'user' && p.token?.scopes, ['read', 'write']);
      const [t] = await hub.tokens.list('alice');
      assert.ok(t!.expiresAt! - Date.now() > 29 * 86_400_000 && t!.expiresAt! - Date.now() <= 30 * 86_400_000);
    } finally {
      await store.close();
    }
    const bad = await berth(env, ['token', 'add', 'alice', 'x', '--scope', 'admin']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
  });

  it('imports an htpasswd file, creates an organization, and deletes accounts only when nothing blocks it', async () => {
    const file = path.join(work, 'htpasswd');
    await writeFile(file, `carol:${bcrypt.hashSync('carol password', 4)}\nalice:${bcrypt.hashSync('x', 4)}\nplain:{SHA}abc\n`);
    let r = await berth(env, ['user', 'import', 'htpasswd', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'imported 1 users: carol; skipped 2\n');
    assert.match(r.stderr, /htpasswd:2: skipped "alice": the name is taken/);
    assert.match(r.stderr, /htpasswd:3: skipped "plain": not a bcrypt hash/);

    r = await berth(env, ['org', 'add', 'acme', '--owner', 'carol']);
    assert.equal(r.code, 0, r.stderr);
    r = await berth(env, ['org', 'add', 'acme2', '--owner', 'nobody']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no user nobody/);

    const store = await open();
    try {
      await store.registry.ensureRepository('carol/app');
      r = await berth(env, ['user', 'del', 'carol']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /carol cannot be deleted: it owns repositories \(carol\/app\).*last owner of acme/);
      await store.registry.deleteRepository('carol/app');
      r = await berth(env, ['user', 'del', 'acme']);
      assert.equal(r.code, 0, r.stderr);
      r = await berth(env, ['user', 'del', 'carol']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await createHub(store).accounts.get('carol'), null);
    } finally {
      await store.close();
    }
  });
});

describe('berth user | token (PostgreSQL)', () => {
  let pg: PostgresServer;
  before(async () => {
    pg = await startPostgres();
  });
  after(() => pg.stop());

  it('adds a user and a token in the PostgreSQL database', async () => {
    const env = { REGISTRY_BERTH_DATABASE_URL: pg.url, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(tmpdir(), 'berth-cli-hub-pg-unused'), REGISTRY_AUTH: 'accounts' };
    let r = await berth(env, ['user', 'add', 'pat', '--admin'], 'pg password\n');
    assert.equal(r.code, 0, r.stderr);
    r = await berth(env, ['token', 'add', 'pat', 'deploy', '--scope', 'delete']);
    assert.equal(r.code, 0, r.stderr);
    const store = await MetadataStore.open({ url: pg.url });
    try {
      const hub = createHub(store);
      assert.equal((await hub.verifier.verify('pat', 'pg password', '127.0.0.1'))?.kind, 'user');
      const p = await hub.verifier.verify('pat', r.stdout.trim(), '127.0.0.1');
      assert.deepEqual(p?.kind === 'user' && p.token?.scopes, ['delete']);
    } finally {
      await store.close();
    }
  });
});
