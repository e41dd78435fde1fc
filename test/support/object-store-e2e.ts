/**
 * The push/pull suite run against Berth on an object store (S3 on Swift,
 * Azure Blob on Azurite), over PostgreSQL as at scale, started the way a
 * user starts it: a `berth serve config.yml` process whose config has the
 * driver's block. skopeo pushes and pulls through it, with blob downloads
 * redirected to presigned URLs of the engine (distribution's default for
 * these drivers) and with `storage.redirect.disable: true`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnBerth, type BerthProcess } from './berth.js';
import { buildImage, pushImage, type BuiltImage } from './images.js';
import { createDatabase, startPostgres, type PostgresServer } from './postgres.js';
import { ensureTool, freePort, run } from './tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface ObjectStoreSetup {
  /** Lines of the `storage:` block's driver section, indented under `storage:`. */
  storageYaml: string[];
  /** Environment for the Berth process (the keys, as production passes them). */
  env: Record<string, string>;
  /** Keys of the objects under a prefix of the store, as the engine lists them. */
  listKeys(prefix: string): Promise<string[]>;
  /** The engine's origin: where redirects must point. */
  engineOrigin: string;
  /** The query parameter that carries a presigned URL's signature. */
  signatureParam: string;
}

interface RequestLine {
  msg: string;
  method: string;
  status: number;
  path: string;
}

let postgres: Promise<PostgresServer> | undefined;
let databases = 0;

export function objectStorePushPull(name: string, setup: () => Promise<ObjectStoreSetup>): void {
  after(async () => {
    if (postgres) await (await postgres).stop();
    postgres = undefined;
  });

  for (const redirect of [true, false]) {
    describe(`skopeo through Berth on ${name}, redirects ${redirect ? 'on' : 'off'}`, () => {
      let store: ObjectStoreSetup;
      let berth: BerthProcess;
      let work: string;
      let image: BuiltImage;
      let skopeo: string;

      const requests = (): RequestLine[] =>
        berth
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as RequestLine)
          .filter((l) => l.msg === 'request');

      before(async () => {
        skopeo = await ensureTool('skopeo');
        store = await setup();
        work = await mkdtemp(path.join(tmpdir(), 'berth-object-store-'));
        const config = path.join(work, 'config.yml');
        await writeFile(
          config,
          ['version: 0.1', 'log:', '  level: info', 'storage:', ...store.storageYaml, '  redirect:', `    disable: ${!redirect}`, '  delete:', '    enabled: true', ''].join('\n'),
        );
        postgres ??= startPostgres();
        const database = await createDatabase(await postgres, `object_store_${++databases}`);
        berth = await spawnBerth(await freePort(), { ...store.env, REGISTRY_BERTH_DATABASE_URL: database }, ['serve', config]);
        // A 6 MiB layer (more than one S3 part, several Azure blocks) and two small blobs.
        image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: `object-store-${name}-${redirect}`, layers: 3, layerBytes: 6 * 1024 * 1024 });
      });
      after(async () => {
        await berth?.stop();
        if (work) await rm(work, { recursive: true, force: true });
      });

      it('pushes an image whose bytes land in the store, leaving no upload behind', async () => {
        const digest = await pushImage(image, `${berth.host}/objects/app:v1`);
        assert.equal(digest, image.manifestDigest);
        const keys = await store.listKeys('berth/blobs/');
        for (const blob of [...image.blobs, image.manifestDigest]) assert.ok(keys.includes(`berth/blobs/sha256/${blob.slice(7, 9)}/${blob.slice(7)}`), `${blob} is in the store`);
        assert.deepEqual(await store.listKeys('berth/uploads/'), [], 'no upload is left behind');
      });

      it(`pulls it back byte for byte, blob downloads ${redirect ? 'redirected to the engine' : 'streamed by Berth'}`, async () => {
        const from = requests().length;
        const dir = await mkdtemp(path.join(work, 'pulled-'));
        await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', `docker://${berth.host}/objects/app:v1`, `dir:${dir}`], { timeoutMs: 180_000 });
        const files = (await readdir(dir)).filter((f) => f !== 'version' && f !== 'manifest.json');
        for (const blob of image.blobs) {
          const f = blob.replace('sha256:', '');
          assert.ok(files.includes(f), `blob ${blob} pulled`);
          assert.equal(sha256(await readFile(path.join(dir, f))), blob, `blob ${blob} intact`);
        }
        assert.equal(sha256(await readFile(path.join(dir, 'manifest.json'))), image.manifestDigest);
        const since = requests().slice(from);
        const blobGets = since.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
        assert.ok(blobGets.length >= image.blobs.length, `every blob was asked of Berth (${blobGets.length})`);
        for (const r of blobGets) assert.equal(r.status, redirect ? 307 : 200, `${r.path} answered ${r.status}`);
        const manifestGets = since.filter((r) => r.method === 'GET' && /\/manifests\//.test(r.path));
        assert.ok(manifestGets.length > 0 && manifestGets.every((r) => r.status === 200), 'manifests are served by Berth itself');
      });

      it('answers HEAD on a blob itself and redirects a GET only when redirects are on', async () => {
        const layer = image.blobs[image.blobs.length - 1]!;
        const head = await fetch(`${berth.url}/v2/objects/app/blobs/${layer}`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('docker-content-digest'), layer);
        const get = await fetch(`${berth.url}/v2/objects/app/blobs/${layer}`, { redirect: 'manual' });
        if (redirect) {
          assert.equal(get.status, 307);
          const location = new URL(get.headers.get('location')!);
          assert.equal(location.origin, store.engineOrigin, 'to the engine');
          assert.ok(location.searchParams.get(store.signatureParam), 'a presigned URL');
          const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
          assert.equal(sha256(bytes), layer);
        } else {
          assert.equal(get.status, 200);
          assert.equal(sha256(Buffer.from(await get.arrayBuffer())), layer);
        }
      });
    });
  }
}
