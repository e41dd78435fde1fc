/**
 * The install step behind bin/berth and `npm test` (scripts/install.sh), and
 * what a server does when a compiled part is missing. The install script
 * runs in a copy of the repository's shape with `npm` and `npx` replaced by
 * recorders, so the test sees what it would run without reinstalling the
 * real node_modules under the other tests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../support/berth.js';

describe('scripts/install.sh', () => {
  let repo: string;
  let calls: string;
  let bin: string;

  before(async () => {
    repo = await mkdtemp(path.join(tmpdir(), 'berth-install-'));
    calls = path.join(repo, 'calls.log');
    bin = path.join(repo, 'fakebin');
    await mkdir(path.join(repo, 'scripts'), { recursive: true });
    await cp(path.join(REPO_ROOT, 'scripts/install.sh'), path.join(repo, 'scripts/install.sh'));
    await mkdir(path.join(repo, 'src/native'), { recursive: true });
    await writeFile(path.join(repo, 'src/native/berth.c'), '/* addon */\n');
    await writeFile(path.join(repo, 'src/a.ts'), 'export const a = 1;\n');
    await mkdir(path.join(repo, 'test'));
    await writeFile(path.join(repo, 'binding.gyp'), '{}\n');
    await writeFile(path.join(repo, 'tsconfig.json'), '{}\n');
    await writeFile(path.join(repo, 'package-lock.json'), '{"lockfileVersion": 3, "v": 1}\n');
    // npm: `ci` fills node_modules as a real install would; `run install` builds the addon.
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'npm'),
      `#!/bin/sh
echo "npm $*" >> ${calls}
case "$1" in
  ci) mkdir -p node_modules/better-sqlite3/build/Release && touch node_modules/better-sqlite3/build/Release/better_sqlite3.node ;;
  run) case "$3" in
    build:vendor) mkdir -p dist/vendor && touch dist/vendor/kysely.cjs dist/vendor/yaml.cjs ;;
    *) mkdir -p build/Release && touch build/Release/berth_native.node ;;
  esac ;;
  config) echo /usr ;;
esac
`,
    );
    await writeFile(path.join(bin, 'npx'), `#!/bin/sh\necho "npx $*" >> ${calls}\nmkdir -p dist/src/cli && touch dist/src/cli/main.js\n`);
    await chmod(path.join(bin, 'npm'), 0o755);
    await chmod(path.join(bin, 'npx'), 0o755);
  });
  after(() => rm(repo, { recursive: true, force: true }));

  const install = async (): Promise<string[]> => {
    await rm(calls, { force: true });
    const r = spawnSync('bash', [path.join(repo, 'scripts/install.sh')], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  };

  it('installs, builds the addon and compiles on a fresh clone', async () => {
    const ran = await install();
    assert.ok(ran.some((l) => l.startsWith('npm ci')), ran.join('\n'));
    assert.ok(ran.includes('npm run --silent install'), ran.join('\n'));
    assert.ok(ran.some((l) => l.startsWith('npx tsc')), ran.join('\n'));
    assert.ok(ran.includes('npm run --silent build:vendor'), ran.join('\n'));
    assert.ok(ran.includes('npm run --silent build:web'), ran.join('\n'));
  });

  it('does nothing when nothing changed', async () => {
    assert.deepEqual(await install(), []);
  });

  it('re-installs when package-lock.json changed, whatever the files’ times say', async () => {
    const lock = path.join(repo, 'package-lock.json');
    await writeFile(lock, '{"lockfileVersion": 3, "v": 2}\n');
    // An old time: a pull can leave a changed file older than node_modules.
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(lock, old, old);
    const ran = await install();
    assert.ok(ran.some((l) => l.startsWith('npm ci')), ran.join('\n'));
    assert.deepEqual(await install(), [], 'and only once');
  });

  it('builds the bundled dependencies again when one is missing', async () => {
    await rm(path.join(repo, 'dist/vendor/yaml.cjs'));
    const ran = await install();
    assert.ok(ran.includes('npm run --silent build:vendor'), ran.join('\n'));
    assert.deepEqual(await install(), [], 'and only once');
  });

  it('rebuilds the addon when its source changed, and compiles when a source changed', async () => {
    const future = new Date(Date.now() + 60_000);
    await utimes(path.join(repo, 'src/native/berth.c'), future, future);
    await utimes(path.join(repo, 'src/a.ts'), future, future);
    const ran = await install();
    assert.ok(!ran.some((l) => l.startsWith('npm ci')), ran.join('\n'));
    assert.ok(ran.includes('npm run --silent install'), ran.join('\n'));
    assert.ok(ran.some((l) => l.startsWith('npx tsc')), ran.join('\n'));
  });
});

describe('a missing native part', () => {
  let copy: string;
  before(async () => {
    // The compiled server without build/Release: as after a failed or skipped build.
    copy = await mkdtemp(path.join(tmpdir(), 'berth-nobuild-'));
    await cp(path.join(REPO_ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    await writeFile(path.join(copy, 'package.json'), await readFile(path.join(REPO_ROOT, 'package.json')));
  });
  after(() => rm(copy, { recursive: true, force: true }));

  it('stops `berth serve` at start-up with a message that names it', () => {
    const r = spawnSync(process.execPath, [path.join(copy, 'dist/src/cli/main.js'), 'serve'], {
      env: { ...process.env, REGISTRY_HTTP_ADDR: '127.0.0.1:0', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(copy, 'data') },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(r.status, 1, `exit code 1, not a server answering 500s:\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /native addon \(build\/Release\/berth_native\.node\) is missing or broken/);
    assert.match(r.stderr, /make, g\+\+, python3/);
    assert.doesNotMatch(r.stdout, /berth listening/);
  });
});
