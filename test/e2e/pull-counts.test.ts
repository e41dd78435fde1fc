/**
 * Pull counts through real clients and real restarts: `berth serve` with
 * htpasswd and two serving threads (each keeps its own buffer of counts and
 * flushes it on a clean shutdown), pulled with skopeo and dockerd; HEADs are
 * not pulls; the counts survive a restart and add up across runs. The same
 * dockerd, logged in with a plain Basic login, runs `docker search`: its v1
 * client then sends Basic credentials, which htpasswd requires.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import pino from 'pino';
import { createDiscovery } from '../../src/hub/index.js';
import { MetadataStore } from '../../src/metadata/store.js';
import { InMemoryBlobStore } from '../../src/storage/index.js';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { startDockerd, type Dockerd } from '../support/clients.js';
import { buildImage, type BuiltImage } from '../support/images.js';
import { CommandError, ensureTool, freePort, run } from '../support/tools.js';

const CREDS = { username: 'puller', password: 'puller-password' };

describe('pull counts with skopeo and dockerd across restarts; docker search with htpasswd', { timeout: 600_000 }, () => {
  let dir: string;
  let config: string;
  let port: number;
  let proc: BerthProcess | undefined;
  let dockerd: Dockerd | undefined;
  let image: BuiltImage;
  let skopeo: string;

  const start = async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))) as Record<string, string>;
    proc = await spawnBerth(port, env, ['serve', config]);
  };
  /** A clean shutdown: every thread writes the counts it holds. */
  const stop = async () => {
    assert.equal(await proc!.stop('SIGTERM'), 0, `berth exits cleanly:\n${proc!.output().slice(-2000)}`);
    proc = undefined;
  };
  /** pull_count as the database holds it (read with the server stopped, so nothing is waiting in a buffer). */
  const pullCount = async (repository: string) => {
    const store = await MetadataStore.open({ sqlitePath: path.join(dir, 'data', 'berth.db') });
    try {
      const d = createDiscovery(store, { mode: 'open', blobs: new InMemoryBlobStore(), log: pino({ level: 'silent' }) });
      const page = await d.pages.repository({ kind: 'anonymous' }, repository);
      await d.close();
      return page.pull_count;
    } finally {
      await store.close();
    }
  };
  const host = () => `127.0.0.1:${port}`;
  const creds = `${CREDS.username}:${CREDS.password}`;

  before(async () => {
    skopeo = await ensureTool('skopeo');
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pulls-'));
    port = await freePort();
    const htpasswd = path.join(dir, 'htpasswd');
    await writeFile(htpasswd, `${CREDS.username}:${bcrypt.hashSync(CREDS.password, 4)}\n`);
    config = path.join(dir, 'config.yml');
    await writeFile(
      config,
      [
        'version: 0.1',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(dir, 'data')}`,
        'http:',
        `  addr: 127.0.0.1:${port}`,
        'auth:',
        '  htpasswd:',
        '    realm: pulls',
        `    path: ${htpasswd}`,
        'berth:',
        '  workers: 2',
        '  warmup: 0s',
        '',
      ].join('\n'),
    );
    image = await buildImage(path.join(dir, 'layout'), { tag: 'v1', seed: 'pull-counts', layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    await start();
    await run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, image.ref, `docker://${host()}/team/counted:v1`], { timeoutMs: 120_000 });
    await run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, image.ref, `docker://${host()}/team/other:v1`], { timeoutMs: 120_000 });
  });
  after(async () => {
    await dockerd?.stop();
    await proc?.stop('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('N pulls with skopeo and dockerd count N; HEADs do not; the counts survive a restart and add up', async () => {
    await stop();
    const before = await pullCount('team/counted');
    assert.equal(before, 0, 'pushing is not pulling');
    await start();
    const pull = (n: number) =>
      run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, `docker://${host()}/team/counted:v1`, `oci:${path.join(dir, `pulled-${n}`)}:v1`], { timeoutMs: 120_000 });
    for (let n = 0; n < 3; n++) await pull(n);
    // HEADs (what clients send to see whether a tag moved) are not pulls.
    const auth = `Basic ${Buffer.from(creds).toString('base64')}`;
    for (let n = 0; n < 4; n++) {
      const res = await fetch(`http://${host()}/v2/team/counted/manifests/v1`, { method: 'HEAD', headers: { Authorization: auth, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(res.status, 200);
    }
    dockerd = await startDockerd();
    await dockerd.login(host(), CREDS);
    for (let n = 0; n < 2; n++) {
      await dockerd.docker(['pull', `${host()}/team/counted:v1`]);
      await dockerd.removeAllImages();
    }
    // dockerd resolves the tag with a HEAD and GETs the manifest by digest, unless its content store
    // still holds that manifest (then it GETs nothing): what counts is what the server served.
    const manifestGets = (p: BerthProcess) => p.output().split('\n').filter((l) => /"method":"GET","path":"\/v2\/team\/counted\/manifests\/[^"]+","route":"manifest","status":200/.test(l));
    const served = proc!;
    await stop();
    const gets = manifestGets(served);
    assert.ok(gets.filter((l) => l.includes('"ua":"docker/')).length >= 1, 'dockerd fetched the manifest at least once');
    assert.equal(await pullCount('team/counted'), gets.length, `every manifest GET is a pull, no HEAD is; the server served:\n${gets.join('\n')}`);
    assert.ok(gets.length >= 4, '3 skopeo pulls and at least one of dockerd');
    assert.equal(await pullCount('team/other'), 0);

    await start();
    const again = proc!;
    await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, `docker://${host()}/team/counted:v1`, `oci:${path.join(dir, 'pulled-again')}:v1`], { timeoutMs: 120_000 });
    await stop();
    assert.equal(manifestGets(again).length, 1);
    assert.equal(await pullCount('team/counted'), gets.length + 1, 'the counts of both runs add up');
    await start();
  });

  it('docker search after a plain docker login sends Basic credentials, which htpasswd requires', async () => {
    const names = async () =>
      (await dockerd!.docker(['search', '--format', '{{.Name}}\t{{.StarCount}}', `${host()}/team`])).stdout
        .split('\n')
        .filter(Boolean)
        .sort();
    assert.deepEqual(await names(), ['team/counted\t0', 'team/other\t0']);
    await dockerd!.docker(['logout', host()]);
    try {
      await names();
      assert.fail('an anonymous search of an htpasswd registry succeeded');
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      assert.match(e.stderr, /401/);
    }
  });
});
