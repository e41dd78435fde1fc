/**
 * The compiled CLI (dist/src/cli/main.js) run as a child process: every
 * command answers --help and -h on stdout with exit 0 and does nothing else,
 * the version comes from package.json, and unknown options or commands exit
 * 2 with the usage on stderr.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let work: string;
let root: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
  root = path.join(work, 'data');
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function berth(...args: string[]): Promise<Run> {
  // No REGISTRY_* from the caller's environment; a data directory that must never appear.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  env.REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY = root;
  env.REGISTRY_HTTP_ADDR = '127.0.0.1:0';
  return new Promise((resolve) => {
    // A command that starts serving instead of answering is killed, and the test fails on its exit code.
    execFile(process.execPath, [MAIN, ...args], { cwd: work, env, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function assertNoData(): Promise<void> {
  await assert.rejects(access(root), 'the command must not have opened the registry');
}

describe('berth <command> --help', () => {
  const commands: [string[], RegExp][] = [
    [['serve'], /^usage: berth serve \[config\.yml\]/],
    [['garbage-collect'], /^usage: berth garbage-collect /],
    [['gc'], /^usage: berth garbage-collect /],
    [['du'], /^usage: berth du /],
    [['backfill'], /^usage: berth backfill /],
  ];
  for (const [command, usage] of commands) {
    for (const flag of ['--help', '-h']) {
      it(`${command.join(' ')} ${flag} prints its usage on stdout and exits 0`, async () => {
        const r = await berth(...command, flag);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, usage);
        assert.equal(r.stderr, '');
        await assertNoData();
      });
    }
  }

  it('finds --help among other arguments (it is not read as a configuration file or run)', async () => {
    for (const args of [['serve', 'config.yml', '--help'], ['garbage-collect', '--dry-run', '-h'], ['du', '--json', '--help'], ['config.yml', '--help']]) {
      const r = await berth(...args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^usage: berth /, args.join(' '));
    }
    await assertNoData();
  });

  it('the usage of garbage-collect names its options', async () => {
    const r = await berth('garbage-collect', '--help');
    for (const option of ['--dry-run', '--delete-untagged', '--grace']) assert.ok(r.stdout.includes(option), option);
  });
});

describe('berth help and version', () => {
  for (const args of [['help'], ['--help'], ['-h']]) {
    it(`${args.join(' ')} prints the list of commands`, async () => {
      const r = await berth(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: berth <command>/);
      for (const command of ['serve', 'garbage-collect', 'du', 'version']) assert.match(r.stdout, new RegExp(`^  ${command} `, 'm'));
    });
  }

  it('help <command> prints that command’s usage; an unknown one exits 2', async () => {
    const r = await berth('help', 'du');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: berth du /);
    const bad = await berth('help', 'frobnicate');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
  });

  for (const args of [['--version'], ['-v'], ['version']]) {
    it(`${args.join(' ')} prints the version from package.json`, async () => {
      const { version } = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { version: string };
      const r = await berth(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `berth ${version} (node ${process.version})\n`);
      await assertNoData();
    });
  }
});

describe('unknown options and commands', () => {
  const cases: [string[], RegExp, RegExp][] = [
    [['serve', '--bogus'], /berth serve: unknown option --bogus/, /usage: berth serve /],
    [['serve', 'a.yml', 'b.yml'], /berth serve: expected at most one configuration file/, /usage: berth serve /],
    [['garbage-collect', '--bogus'], /berth garbage-collect: unknown option --bogus/, /usage: berth garbage-collect /],
    [['gc', '-x'], /berth garbage-collect: unknown option -x/, /usage: berth garbage-collect /],
    [['du', '--bogus'], /berth du: unknown option --bogus/, /usage: berth du /],
    [['du', 'a.yml', 'b.yml'], /berth du: expected at most one configuration file/, /usage: berth du /],
    [['--bogus'], /berth: unknown option --bogus/, /usage: berth <command>/],
    [['frobnicate'], /berth: unknown command "frobnicate"/, /usage: berth <command>/],
  ];
  for (const [args, message, usage] of cases) {
    it(`${args.join(' ')} exits 2 with the usage on stderr`, async () => {
      const r = await berth(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, usage);
      assert.equal(r.stdout, '');
      await assertNoData();
    });
  }
});
