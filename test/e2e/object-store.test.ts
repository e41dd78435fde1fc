/**
 * Berth on S3 (OpenStack Swift's s3api, test/support/swift.ts) over
 * PostgreSQL, as it runs at scale, started the way a user starts it: a
 * `berth serve config.yml` process whose config has a `storage: s3:` block. skopeo pushes and pulls through it, with blob
 * downloads redirected to presigned URLs of the engine (distribution's
 * default) and with `storage.redirect.disable: true` (bytes through Berth).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createS3Client, type S3Options } from '../../src/storage/s3.js';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { createDatabase, startPostgres, type PostgresServer } from '../support/postgres.js';
import { buildImage, pushImage, type BuiltImage } from '../support/images.js';
import { s3Engine, type S3Engine } from '../support/swift.js';
import { ensureTool, freePort, run } from '../support/tools.js';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface RequestLine {
  msg: string;
  method: string;
  route: string;
  status: number;
  path: string;
}

let postgres: Promise<PostgresServer> | undefined;
after(async () => {
  if (postgres) await (await postgres).stop();
});

for (const redirect of [true, false]) {
  describe(`skopeo through Berth on S3 (Swift), redirects ${redirect ? 'on' : 'off'}`, () => {
    let engine: S3Engine;
    let berth: BerthProcess;
    let work: string;
    let image: BuiltImage;
    let skopeo: string;
    let s3: S3Options;

    const requests = (): RequestLine[] =>
      berth
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as RequestLine)
        .filter((l) => l.msg === 'request');

    before(async () => {
      skopeo = await ensureTool('skopeo');
      engine = await s3Engine();
      work = await mkdtemp(path.join(tmpdir(), 'berth-object-store-'));
      s3 = { bucket: `berth-e2e-${randomBytes(5).toString('hex')}`, region: engine.region, endpoint: engine.endpoint, accessKey: engine.accessKey, secretKey: engine.secretKey, forcePathStyle: true };
      const client = createS3Client(s3);
      await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
      client.destroy();
      // As a user writes it: distribution's keys; the keys themselves from the environment, as in production.
      const config = path.join(work, 'config.yml');
      await writeFile(
        config,
        [
          'version: 0.1',
          'log:',
          '  level: info',
          'storage:',
          '  s3:',
          `    region: ${engine.region}`,
          `    bucket: ${s3.bucket}`,
          `    regionendpoint: ${engine.endpoint}`,
          '    forcepathstyle: true',
          '    rootdirectory: /berth',
          '    chunksize: 5242880',
          '    storageclass: NONE',
          '  redirect:',
          `    disable: ${!redirect}`,
          '  delete:',
          '    enabled: true',
          '',
        ].join('\n'),
      );
      postgres ??= startPostgres();
      const database = await createDatabase(await postgres, `object_store_${redirect ? 'redirect' : 'stream'}`);
      berth = await spawnBerth(await freePort(), { REGISTRY_STORAGE_S3_ACCESSKEY: engine.accessKey, REGISTRY_STORAGE_S3_SECRETKEY: engine.secretKey, REGISTRY_BERTH_DATABASE_URL: database }, ['serve', config]);
      // A 6 MiB layer (more than one S3 part) and two small ones.
      image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: `object-store-${redirect}`, layers: 3, layerBytes: 6 * 1024 * 1024 });
    });
    after(async () => {
      await berth?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('pushes an image whose bytes land in the bucket', async () => {
      const digest = await pushImage(image, `${berth.host}/objects/app:v1`);
      assert.equal(digest, image.manifestDigest);
      const client = createS3Client(s3);
      try {
        const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'berth/blobs/' }));
        const keys = (listed.Contents ?? []).map((o) => o.Key!);
        for (const blob of [...image.blobs, image.manifestDigest]) assert.ok(keys.includes(`berth/blobs/sha256/${blob.slice(7, 9)}/${blob.slice(7)}`), `${blob} is in the bucket`);
        const uploads = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'berth/uploads/' }));
        assert.equal(uploads.Contents?.length ?? 0, 0, 'no upload is left behind');
      } finally {
        client.destroy();
      }
    });

    it(`pulls it back byte for byte, blob downloads ${redirect ? 'redirected to the engine' : 'streamed by Berth'}`, async () => {
      const before = requests().length;
      const dir = await mkdtemp(path.join(work, 'pulled-'));
      await run(skopeo, ['copy', '--quiet', '--src-tls-verify=false', `docker://${berth.host}/objects/app:v1`, `dir:${dir}`], { timeoutMs: 180_000 });
      const files = (await readdir(dir)).filter((f) => f !== 'version' && f !== 'manifest.json');
      for (const blob of image.blobs) {
        const f = blob.replace('sha256:', '');
        assert.ok(files.includes(f), `blob ${blob} pulled`);
        assert.equal(sha256(await readFile(path.join(dir, f))), blob, `blob ${blob} intact`);
      }
      assert.equal(sha256(await readFile(path.join(dir, 'manifest.json'))), image.manifestDigest);
      const blobGets = requests()
        .slice(before)
        .filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path));
      assert.ok(blobGets.length >= image.blobs.length, `every blob was asked of Berth (${blobGets.length})`);
      for (const r of blobGets) assert.equal(r.status, redirect ? 307 : 200, `${r.path} answered ${r.status}`);
      const manifestGets = requests()
        .slice(before)
        .filter((r) => r.method === 'GET' && /\/manifests\//.test(r.path));
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
        assert.equal(location.origin, new URL(engine.endpoint).origin, 'to the engine');
        assert.ok(location.searchParams.get('X-Amz-Expires'), 'a presigned, expiring URL');
        const bytes = Buffer.from(await (await fetch(location)).arrayBuffer());
        assert.equal(sha256(bytes), layer);
      } else {
        assert.equal(get.status, 200);
        assert.equal(sha256(Buffer.from(await get.arrayBuffer())), layer);
      }
    });
  });
}
