/**
 * The push/pull suite run against Berth on an object store (S3 on Swift,
 * Azure Blob on Azurite), over PostgreSQL as at scale, started the way a
 * user starts it: a `berth serve config.yml` process whose config has the
 * driver's block. skopeo pushes and pulls through it, with blob downloads
 * redirected to presigned URLs of the engine (distribution's default for
 * these drivers) and with `storage.redirect.disable: true`.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
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
  /** Keys of the objects under a prefix of the store, as the engine lists them (Swift's listings may lag). */
  listKeys(prefix: string): Promise<string[]>;
  /** Whether an object is there, asked by key (consistent at once). */
  has(key: string): Promise<boolean>;
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
      /** A second replica: same config, same database, same store. */
      let other: BerthProcess;
      let berthEnv: Record<string, string>;
      let berthConfig: string;
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

      const blobKey = (digest: string) => `berth/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`;
      /** A listing, asked again for up to 15 s while it still shows something (a listing may lag behind deletes). */
      const settledListing = async (prefix: string): Promise<string[]> => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const keys = await store.listKeys(prefix);
          if (keys.length === 0 || Date.now() > deadline) return keys;
          await new Promise((r) => setTimeout(r, 500));
        }
      };

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
        berthEnv = { ...store.env, REGISTRY_BERTH_DATABASE_URL: database };
        berthConfig = config;
        berth = await spawnBerth(await freePort(), { ...store.env, REGISTRY_BERTH_DATABASE_URL: database }, ['serve', config]);
        other = await spawnBerth(await freePort(), { ...store.env, REGISTRY_BERTH_DATABASE_URL: database }, ['serve', config]);
        // A 6 MiB layer (more than one S3 part, several Azure blocks) and two small blobs.
        image = await buildImage(path.join(work, 'layout'), { tag: 'v1', seed: `object-store-${name}-${redirect}`, layers: 3, layerBytes: 6 * 1024 * 1024 });
      });
      after(async () => {
        await other?.stop();
        await berth?.stop();
        if (work) await rm(work, { recursive: true, force: true });
      });

      it('pushes an image whose bytes land in the store, leaving no upload behind', async () => {
        const digest = await pushImage(image, `${berth.host}/objects/app:v1`);
        assert.equal(digest, image.manifestDigest);
        for (const blob of [...image.blobs, image.manifestDigest]) assert.ok(await store.has(blobKey(blob)), `${blob} is in the store`);
        assert.deepEqual(await settledListing('berth/uploads/'), [], 'no upload is left behind');
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

      it('continues an upload on another replica, chunk by chunk, and after the first one was killed', async () => {
        const data = Buffer.concat([Buffer.from('x'), Buffer.alloc(100 * 1024, 7), randomBytes(6 * 1024 * 1024)]);
        const digest = sha256(data);
        const third = await spawnBerth(await freePort(), berthEnv, ['serve', berthConfig]);
        const replicas = [third, berth, other];
        let location = '';
        const send = async (replica: BerthProcess, method: string, pathAndQuery: string, body?: Buffer, headers: Record<string, string> = {}) => {
          const r = await fetch(`${replica.url}${pathAndQuery}`, { method, body, headers, redirect: 'manual' });
          await r.arrayBuffer();
          return r;
        };
        try {
          const started = await send(third, 'POST', '/v2/objects/chunked/blobs/uploads/');
          assert.equal(started.status, 202);
          location = new URL(started.headers.get('location')!, third.url).pathname + new URL(started.headers.get('location')!, third.url).search;
          // 1 byte, 100 KiB, then the rest in 2 MiB chunks, each to the next replica in turn.
          const bounds = [0, 1, 1 + 100 * 1024];
          for (let at = bounds[bounds.length - 1]!; at < data.byteLength - 1; at = Math.min(at + 2 * 1024 * 1024, data.byteLength - 1)) bounds.push(Math.min(at + 2 * 1024 * 1024, data.byteLength - 1));
          for (let i = 0; i + 1 < bounds.length; i++) {
            const [from, to] = [bounds[i]!, bounds[i + 1]!];
            const replica = replicas[i % replicas.length]!;
            const r = await send(replica, 'PATCH', location, data.subarray(from, to), { 'Content-Type': 'application/octet-stream', 'Content-Range': `${from}-${to - 1}` });
            assert.equal(r.status, 202, `chunk ${from}-${to - 1} on replica ${i % replicas.length}`);
            assert.equal(r.headers.get('range'), `0-${to - 1}`);
            location = new URL(r.headers.get('location')!, replica.url).pathname + new URL(r.headers.get('location')!, replica.url).search;
            if (i === 0) {
              // The replica that started the upload dies; the others carry on.
              assert.equal(await third.stop('SIGKILL'), null);
              replicas.splice(0, 1);
            }
          }
          const status = await send(other, 'GET', location);
          assert.equal(status.status, 204);
          assert.equal(status.headers.get('range'), `0-${data.byteLength - 2}`);
          const sep = location.includes('?') ? '&' : '?';
          const done = await send(berth, 'PUT', `${location}${sep}digest=${digest}`, data.subarray(data.byteLength - 1), { 'Content-Type': 'application/octet-stream' });
          assert.equal(done.status, 201);
        } finally {
          await third.stop('SIGKILL');
        }
        const head = await fetch(`${other.url}/v2/objects/chunked/blobs/${digest}`, { method: 'HEAD' });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(data.byteLength));
        const pulled = Buffer.from(await (await fetch(`${other.url}/v2/objects/chunked/blobs/${digest}`)).arrayBuffer());
        assert.equal(sha256(pulled), digest, 'the blob reads back whole, through a redirect or not');
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

      it("a collection removes a deleted image's bytes from the store", async () => {
        const deleted = await fetch(`${berth.url}/v2/objects/app/manifests/${image.manifestDigest}`, { method: 'DELETE' });
        assert.equal(deleted.status, 202);
        const run = await fetch(`${other.url}/berth/v1/gc?deleteuntagged=true&grace=0s&wait=true`, { method: 'POST' });
        const body = (await run.json()) as { state: string; summary: { blobsDeleted: number } };
        assert.equal(run.status, 200, JSON.stringify(body));
        assert.equal(body.state, 'finished');
        assert.ok(body.summary.blobsDeleted >= image.blobs.length + 1, `the image's blobs and manifest went (${body.summary.blobsDeleted})`);
        for (const blob of [...image.blobs, image.manifestDigest]) assert.equal(await store.has(blobKey(blob)), false, `${blob} is gone from the store`);
        assert.equal((await fetch(`${berth.url}/v2/objects/app/blobs/${image.blobs[0]}`, { method: 'HEAD' })).status, 404);
      });
    });
  }
}
