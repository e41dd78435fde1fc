/**
 * `berth org member | team | robot | repo | collaborator | invite | audit`
 * run as the compiled CLI against a data directory (SQLite); what they
 * wrote is checked through the Hub on the same database.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createHub } from '../hub/index.js';
import { MetadataStore } from '../metadata/store.js';
import { runCli } from '../../test/support/cli.js';
import { parseSince } from './hub.js';

const berth = runCli;

describe('berth org member | team | robot | repo | collaborator | invite | audit', () => {
  let work: string;
  let root: string;
  let env: NodeJS.ProcessEnv;
  const ok = async (args: string[], stdin = '') => {
    const r = await berth(env, args, stdin);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const withHub = async <T>(fn: (hub: ReturnType<typeof createHub>, store: MetadataStore) => Promise<T>): Promise<T> => {
    const store = await MetadataStore.open({ sqlitePath: path.join(root, 'berth.db') });
    try {
      return await fn(createHub(store), store);
    } finally {
      await store.close();
    }
  };
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-cli-teams-'));
    root = path.join(work, 'data');
    env = { REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root, REGISTRY_AUTH: 'accounts', REGISTRY_AUTH_ACCOUNTS_REGISTRATION: 'invite' };
  });
  after(() => rm(work, { recursive: true, force: true }));

  it('answers --help for every new command without touching the data', async () => {
    for (const [args, usage] of [
      [['team', '--help'], /^usage: berth team <subcommand>/],
      [['team', 'grant', '-h'], /^usage: berth team <subcommand>/],
      [['org', 'member', 'add', '--help'], /member add ORG USER/],
      [['robot', '--help'], /^usage: berth robot <subcommand>[\s\S]*--grant REPO:PERM/],
      [['repo', 'visibility', '--help'], /^usage: berth repo visibility NAME public\|private/],
      [['collaborator', '--help'], /^usage: berth collaborator <subcommand>/],
      [['invite', 'add', '--help'], /^usage: berth invite add/],
      [['audit', '--help'], /^usage: berth audit/],
      [['help', 'robot'], /^usage: berth robot/],
      [['--help'], /robot +an organization's robots/],
    ] as const) {
      const r = await berth(env, [...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, usage);
    }
    await assert.rejects(access(root), 'no data directory was created');
  });

  it('refuses wrong arguments with the usage (exit 2)', async () => {
    for (const args of [
      ['team'],
      ['team', 'grant', 'acme', 'devs', 'acme/api'],
      ['team', 'member', 'kick', 'acme', 'devs', 'bob'],
      ['org', 'member', 'add', 'acme'],
      ['robot', 'add', 'acme', 'ci', '--grant', 'nocolon'],
      ['robot', 'add', 'acme', 'ci', '--expires', 'soon'],
      ['repo', 'visibility', 'alice/app', 'hidden'],
      ['collaborator', 'add', 'alice/app', 'bob', 'owner'],
      ['invite', 'add', 'extra'],
      ['audit', '--since', 'last tuesday'],
      ['audit', '-n', '0'],
    ]) {
      const r = await berth(env, args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^berth ${args[0]}: .*\\n\\nusage: berth ${args[0]}`));
    }
  });

  it('manages organizations, teams, robots, visibility and collaborators, and prints the audit log', async () => {
    await ok(['user', 'add', 'alice'], 'alice password\n');
    await ok(['user', 'add', 'bob'], 'bob password\n');
    await ok(['org', 'add', 'acme', '--owner', 'alice']);
    assert.equal((await ok(['org', 'member', 'add', 'acme', 'bob'])).stdout, 'bob is a member of acme\n');
    let r = await berth(env, ['org', 'member', 'del', 'acme', 'alice']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /alice is the last owner of acme/);
    await ok(['team', 'add', 'acme', 'devs']);
    await ok(['team', 'member', 'add', 'acme', 'devs', 'bob']);
    await ok(['team', 'grant', 'acme', 'devs', '*', 'read']);
    await ok(['team', 'grant', 'acme', 'devs', 'acme/api', 'write']);
    r = await berth(env, ['team', 'grant', 'acme', 'devs', 'other/api', 'write']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /other\/api is not a repository of acme/);
    await withHub(async (hub) => {
      assert.deepEqual(await hub.organizations.teamPermissions('acme', 'devs'), [
        { repository: '*', permission: 'read' },
        { repository: 'acme/api', permission: 'write' },
      ]);
      assert.deepEqual(await hub.organizations.teamMembers('acme', 'devs'), ['bob']);
    });
    await ok(['team', 'member', 'del', 'acme', 'devs', 'bob']);
    await withHub(async (hub) => assert.deepEqual(await hub.organizations.teamMembers('acme', 'devs'), []));

    r = await ok(['robot', 'add', 'acme', 'ci', '--grant', 'acme/api:write', '--grant', 'acme/web:read', '--expires', '30d']);
    assert.match(r.stdout, /^brob_[A-Za-z0-9_-]{43}\n$/);
    assert.match(r.stderr, /robot acme\+ci \(acme\/api:write, acme\/web:read, expires \d{4}-/);
    const secret = r.stdout.trim();
    await withHub(async (hub) => {
      const p = await hub.verifier.verify('acme+ci', secret, '127.0.0.1');
      assert.equal(p?.kind, 'robot');
      assert.equal((await hub.facts.permission(p!, 'acme/api', true)), 'write');
    });
    assert.match((await ok(['robot', 'list', 'acme'])).stdout, /^acme\+ci\tactive\t\d{4}-.*\tacme\/api:write,acme\/web:read\n$/);
    await ok(['robot', 'del', 'acme', 'ci']);
    await withHub(async (hub) => assert.equal(await hub.verifier.verify('acme+ci', secret, '127.0.0.1'), null));
    assert.match((await ok(['robot', 'list', 'acme'])).stdout, /^acme\+ci\tdisabled\t/);
    await ok(['robot', 'del', 'acme', 'ci', '--purge']);
    assert.equal((await ok(['robot', 'list', 'acme'])).stdout, '');

    await withHub(async (_hub, store) => {
      await store.registry.putManifest('alice/app', { digest: `sha256:${createHash('sha256').update('m').digest('hex')}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, artifactType: null, subjectDigest: null, annotations: null, blobs: [], manifests: [] }, ['v1']);
    });
    await ok(['repo', 'visibility', 'alice/app', 'private']);
    await withHub(async (hub) => assert.equal(await hub.repositories.visibility('alice/app'), 'private'));
    await ok(['repo', 'visibility', 'alice/app', 'public']);
    await withHub(async (hub) => assert.equal(await hub.repositories.visibility('alice/app'), 'public'));
    r = await berth(env, ['repo', 'visibility', 'alice/none', 'public']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no repository alice\/none/);

    await ok(['collaborator', 'add', 'alice/app', 'bob', 'write']);
    await withHub(async (hub) => assert.deepEqual(await hub.repositories.collaborators('alice/app'), [{ name: 'bob', permission: 'write' }]));
    await ok(['collaborator', 'del', 'alice/app', 'bob']);
    await withHub(async (hub) => assert.deepEqual(await hub.repositories.collaborators('alice/app'), []));
    r = await berth(env, ['collaborator', 'del', 'alice/app', 'bob']);
    assert.equal(r.code, 1);

    r = await ok(['invite', 'add', '--email', 'new@example.org', '--expires', '2d']);
    assert.match(r.stdout, /^binv_[A-Za-z0-9_-]{43}\n$/);
    const code = r.stdout.trim();
    await withHub(async (_hub, store) => {
      const created = await createHub(store, { registration: 'invite' }).accounts.register({ name: 'newbie', password: 'newbie password', invitation: code }, { name: null, client: 'test' });
      assert.equal(created.name, 'newbie');
    });

    r = await ok(['audit', '--action', 'team.permission']);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT[^\t]+\t-\tteam\.permission\tacme\/devs\tcli\t-\t\{"repository":"acme\/api","permission":"write"\}$/);
    assert.equal((await ok(['audit', '-n', '3'])).stdout.trim().split('\n').length, 3);
    assert.match((await ok(['audit', '-n', '1'])).stdout, /\taccount\.register\tnewbie\t/);
    assert.equal((await ok(['audit', '--since', new Date(Date.now() + 3_600_000).toISOString()])).stdout, '');
    assert.ok((await ok(['audit', '--since', '1h'])).stdout.split('\n').length > 10);
    assert.match((await ok(['audit', '--actor', 'newbie'])).stdout, /^[^\t]+\tnewbie\taccount\.register\t/);
  });

  it('reads --since as a duration back, a date or milliseconds', () => {
    const now = Date.UTC(2024, 4, 2);
    assert.equal(parseSince('24h', now), now - 86_400_000);
    assert.equal(parseSince('7d', now), now - 7 * 86_400_000);
    assert.equal(parseSince('2024-05-01T00:00:00Z', now), Date.UTC(2024, 4, 1));
    assert.equal(parseSince('1714521600000', now), 1714521600000);
    assert.throws(() => parseSince('yesterday', now), /--since/);
  });
});
