/**
 * The classic registry:2 private setup, unchanged: config.yml + REGISTRY_*
 * variables + an htpasswd file written by Apache's `htpasswd -Bbn`, then
 * login, push, pull, catalog, HEAD for the digest and DELETE by digest.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { stockConfig } from '../support/distribution.js';
import { buildImage, MEDIA_TYPES, type BuiltImage } from '../support/images.js';
import { ensureTool, freePort, run } from '../support/tools.js';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('drop-in for registry:2 (config.yml, env, htpasswd)', () => {
  let work: string;
  let htpasswdFile: string;
  let berth: BerthProcess;
  let skopeo: string;
  let htpasswd: string;
  let image: BuiltImage;

  before(async () => {
    [skopeo, htpasswd] = await Promise.all([ensureTool('skopeo'), ensureTool('htpasswd', 'apache2-utils')]);
    work = await mkdtemp(path.join(tmpdir(), 'berth-dropin-'));
    htpasswdFile = path.join(work, 'htpasswd');
    await writeFile(htpasswdFile, (await run(htpasswd, ['-Bbn', 'alice', 'correct horse'])).stdout);
    const configFile = path.join(work, 'config.yml');
    // Unchanged but for where the data goes; deletes are turned on by REGISTRY_* below.
    await writeFile(configFile, stockConfig(path.join(work, 'data')));
    image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: 'dropin', layers: 2 });
    berth = await spawnBerth(await freePort(), {
      REGISTRY_AUTH: 'htpasswd',
      REGISTRY_AUTH_HTPASSWD_REALM: 'Registry Realm',
      REGISTRY_AUTH_HTPASSWD_PATH: htpasswdFile,
      REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    }, ['serve', configFile]);
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await rm(work, { recursive: true, force: true });
  });

  it('challenges anonymous clients with Basic and the spec error body', async () => {
    const r = await fetch(`${berth.url}/v2/`);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Basic realm="Registry Realm"');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const body = (await r.json()) as { errors: { code: string }[] };
    assert.equal(body.errors[0]!.code, 'UNAUTHORIZED');
    const wrong = await fetch(`${berth.url}/v2/`, { headers: { Authorization: basic('alice', 'wrong') } });
    assert.equal(wrong.status, 401);
    const ok = await fetch(`${berth.url}/v2/`, { headers: { Authorization: basic('alice', 'correct horse') } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('x-content-type-options'), 'nosniff');
  });

  it('skopeo login succeeds with the right password and fails with a wrong one', async () => {
    const authfile = path.join(work, 'auth.json');
    await run(skopeo, ['login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '-p', 'correct horse', berth.host]);
    await assert.rejects(run(skopeo, ['login', '--tls-verify=false', '--authfile', path.join(work, 'bad.json'), '-u', 'alice', '-p', 'nope', berth.host]), /401|unauthorized|invalid/i);
  });

  it('pushes, pulls, lists the catalog, HEADs for the digest and deletes by digest', async () => {
    const creds = 'alice:correct horse';
    await run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, '--format', 'v2s2', image.ref, `docker://${berth.host}/myimage:latest`]);
    await assert.rejects(run(skopeo, ['copy', '--quiet', '--dest-tls-verify=false', image.ref, `docker://${berth.host}/anon:latest`]), /401|unauthorized|authentication/i);
    const pulled = path.join(work, 'pulled');
    await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, `docker://${berth.host}/myimage:latest`, `dir:${pulled}`]);

    const auth = { Authorization: basic('alice', 'correct horse') };
    const catalog = (await (await fetch(`${berth.url}/v2/_catalog`, { headers: auth })).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ['myimage']);

    const head = await fetch(`${berth.url}/v2/myimage/manifests/latest`, { method: 'HEAD', headers: { ...auth, Accept: MEDIA_TYPES.dockerManifest } });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), MEDIA_TYPES.dockerManifest);
    const digest = head.headers.get('docker-content-digest')!;
    assert.match(digest, /^sha256:[a-f0-9]{64}$/);

    const del = await fetch(`${berth.url}/v2/myimage/manifests/${digest}`, { method: 'DELETE', headers: auth });
    assert.equal(del.status, 202);
    const gone = await fetch(`${berth.url}/v2/myimage/manifests/latest`, { headers: { ...auth, Accept: MEDIA_TYPES.dockerManifest } });
    assert.equal(gone.status, 404);
  });

  it('re-reads the htpasswd file when it changes, without a restart', async () => {
    const bob = basic('bob', 'hunter2');
    assert.equal((await fetch(`${berth.url}/v2/`, { headers: { Authorization: bob } })).status, 401);
    await appendFile(htpasswdFile, (await run(htpasswd, ['-Bbn', 'bob', 'hunter2'])).stdout);
    // The file is looked at again about once a second; the deadline only bounds a broken server.
    const bobGets = async (want: number) => {
      const deadline = Date.now() + 20_000;
      let status = 0;
      while (status !== want && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await fetch(`${berth.url}/v2/`, { headers: { Authorization: bob } })).status;
      }
      return status;
    };
    assert.equal(await bobGets(200), 200, 'a user added to the file is accepted');
    await writeFile(htpasswdFile, (await run(htpasswd, ['-Bbn', 'alice', 'correct horse'])).stdout);
    assert.equal(await bobGets(401), 401, 'a user removed from the file is refused');
  });

  it('refuses to start when the htpasswd file is missing', async () => {
    await assert.rejects(
      spawnBerth(await freePort(), {
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: path.join(work, 'data2'),
        REGISTRY_AUTH: 'htpasswd',
        REGISTRY_AUTH_HTPASSWD_REALM: 'r',
        REGISTRY_AUTH_HTPASSWD_PATH: path.join(work, 'no-such-file'),
      }),
      /auth\.htpasswd\.path: cannot read/,
    );
  });
});
