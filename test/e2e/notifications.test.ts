/**
 * Notifications end to end: the real `berth serve` process, skopeo pushing and
 * pulling, and a real HTTP endpoint. First the format (envelope, actions,
 * targets, request, source); then the persisted queue: the endpoint fails,
 * pushes continue, the registry is killed with -9 mid-queue and restarted,
 * the endpoint recovers, and every event arrives, in order, none twice in a
 * row without a failure between.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EVENTS_MEDIA_TYPE, type RegistryEvent } from '../../src/events/index.js';
import { MetadataStore } from '../../src/metadata/index.js';
import { spawnBerth, type BerthProcess } from '../support/berth.js';
import { buildImage, MEDIA_TYPES, pullImage, pushImage, type BuiltImage } from '../support/images.js';
import { freePort } from '../support/tools.js';

interface Delivery {
  status: number;
  contentType: string | undefined;
  authorization: string | undefined;
  events: RegistryEvent[];
}

/** The endpoint: answers 200, or 500 while `failing`; logs every attempt in arrival order. */
class Endpoint {
  failing = false;
  readonly log: Delivery[] = [];
  private server!: http.Server;
  url = '';

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.failing ? 500 : 200;
        let events: RegistryEvent[] = [];
        try {
          events = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: RegistryEvent[] }).events;
        } catch {
          // a malformed envelope is recorded with no events and fails the checks below
        }
        this.log.push({ status, contentType: req.headers['content-type'], authorization: req.headers.authorization, events });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this;
  }

  /** Accepted events, in the order they were accepted. */
  accepted(): RegistryEvent[] {
    return this.log.filter((d) => d.status === 200).flatMap((d) => d.events);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const find = (events: RegistryEvent[], action: string, digest: string, repository?: string) =>
  events.filter((e) => e.action === action && e.target.digest === digest && (repository === undefined || e.target.repository === repository));

describe('notifications (real server process)', () => {
  let work: string;
  let root: string;
  let port: number;
  let endpoint: Endpoint;
  let berth: BerthProcess | undefined;
  const env = () => ({
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_STORAGE_DELETE_ENABLED: 'true',
    REGISTRY_LOG_ACCESSLOG_DISABLED: 'true',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_NAME: 'listener',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL: endpoint.url,
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_HEADERS: '{Authorization: [Bearer s3cret]}',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT: '1s',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_BACKOFF: '200ms',
    REGISTRY_NOTIFICATIONS_ENDPOINTS_0_THRESHOLD: '3',
  });

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'berth-notify-'));
    root = path.join(work, 'data');
    port = await freePort();
    endpoint = await new Endpoint().start();
    berth = await spawnBerth(port, env());
  });
  after(async () => {
    await berth?.stop('SIGKILL');
    await endpoint?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('sends push, pull, mount and delete events in distribution’s envelope', async () => {
    const b = berth!;
    const image = await buildImage(path.join(work, 'layout-a'), { tag: 'v1', seed: 'notify-a', layers: 2 });
    const digest = await pushImage(image, `${b.host}/notify/app:v1`);
    assert.equal(digest, image.manifestDigest);
    await until('push events', () => find(endpoint.accepted(), 'push', digest).length === 1);
    const pushes = endpoint.accepted().filter((e) => e.action === 'push');
    for (const blob of image.blobs) assert.equal(find(pushes, 'push', blob).length, 1, `one push event for blob ${blob}`);

    const manifestPush = find(pushes, 'push', digest)[0]!;
    assert.deepEqual(manifestPush.target, {
      mediaType: MEDIA_TYPES.ociManifest,
      digest,
      size: image.manifestSize,
      length: image.manifestSize,
      repository: 'notify/app',
      url: `${b.url}/v2/notify/app/manifests/${digest}`,
      tag: 'v1',
    });
    assert.equal(manifestPush.request?.method, 'PUT');
    assert.equal(manifestPush.request?.host, b.host);
    assert.match(manifestPush.request?.addr ?? '', /^127\.0\.0\.1:\d+$/);
    assert.ok(manifestPush.request?.useragent, 'the user agent is recorded');
    assert.ok(manifestPush.request?.id);
    assert.deepEqual(manifestPush.actor, {});
    assert.match(manifestPush.source?.addr ?? '', new RegExp(`:${port}$`));
    assert.match(manifestPush.source?.instanceID ?? '', /^[0-9a-f-]{36}$/);
    assert.match(manifestPush.timestamp, /^\d{4}-\d\d-\d\dT/);
    // The manifest comes after the blobs it references.
    const order = endpoint.accepted().map((e) => e.target.digest);
    for (const blob of image.blobs) assert.ok(order.indexOf(blob) < order.indexOf(digest));
    const blobPush = find(pushes, 'push', image.blobs[0]!)[0]!;
    assert.equal(blobPush.target.mediaType, 'application/octet-stream');
    assert.ok((blobPush.target.size ?? 0) > 0 && blobPush.target.size === blobPush.target.length);
    assert.equal(blobPush.target.url, `${b.url}/v2/notify/app/blobs/${image.blobs[0]}`);

    for (const d of endpoint.log) {
      assert.equal(d.contentType, EVENTS_MEDIA_TYPE);
      assert.equal(d.authorization, 'Bearer s3cret');
    }

    // Pull: the manifest GET by tag and every blob GET; HEADs make no events.
    const seen = endpoint.accepted().length;
    await pullImage(`${b.host}/notify/app:v1`, path.join(work, 'pulled'), 'v1');
    await until('pull events', () => image.blobs.every((blob) => find(endpoint.accepted(), 'pull', blob).length >= 1) && find(endpoint.accepted(), 'pull', digest).length >= 1);
    const manifestPullCount = find(endpoint.accepted(), 'pull', digest).length;
    const sentinel = image.blobs[0]!;
    const sentinelCount = find(endpoint.accepted(), 'pull', sentinel).length;
    assert.equal((await fetch(`${b.url}/v2/notify/app/manifests/v1`, { method: 'HEAD', headers: { Accept: MEDIA_TYPES.ociManifest } })).status, 200);
    assert.equal((await fetch(`${b.url}/v2/notify/app/blobs/${sentinel}`, { method: 'HEAD' })).status, 200);
    // A ranged GET is a pull too, reported with the blob's full size.
    const ranged = await fetch(`${b.url}/v2/notify/app/blobs/${sentinel}`, { headers: { Range: 'bytes=0-9' } });
    assert.equal(ranged.status, 206);
    await ranged.arrayBuffer();
    await until('the ranged pull', () => find(endpoint.accepted(), 'pull', sentinel).length === sentinelCount + 1);
    assert.equal(find(endpoint.accepted(), 'pull', digest).length, manifestPullCount, 'HEAD makes no pull event');
    assert.equal(find(endpoint.accepted(), 'pull', sentinel).at(-1)!.target.size, find(endpoint.accepted(), 'push', sentinel)[0]!.target.size);
    const pulls = endpoint.accepted().slice(seen);
    assert.ok(pulls.every((e) => e.action === 'pull'), `only pulls: ${pulls.map((e) => e.action)}`);
    const manifestPulls = find(pulls, 'pull', digest);
    assert.ok(manifestPulls.length >= 1);
    assert.equal(manifestPulls[0]!.target.tag, 'v1');
    assert.equal(manifestPulls[0]!.target.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(manifestPulls[0]!.target.size, image.manifestSize);
    assert.equal(manifestPulls[0]!.request?.method, 'GET');

    // A push by digest with a generic Content-Type: the stored media type is reported, and no tag.
    const body = Buffer.from(await (await fetch(`${b.url}/v2/notify/app/manifests/${digest}`, { headers: { Accept: MEDIA_TYPES.ociManifest } })).arrayBuffer());
    const put = await fetch(`${b.url}/v2/notify/app/manifests/${digest}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body });
    assert.equal(put.status, 201);
    await until('the second manifest push', () => find(endpoint.accepted(), 'push', digest).length === 2);
    const byDigest = find(endpoint.accepted(), 'push', digest)[1]!;
    assert.equal(byDigest.target.mediaType, MEDIA_TYPES.ociManifest);
    assert.equal(byDigest.target.tag, undefined);
    assert.equal(byDigest.target.size, body.byteLength);

    // Mount from another repository.
    const layer = image.blobs[1]!;
    const r = await fetch(`${b.url}/v2/notify/other/blobs/uploads/?mount=${layer}&from=notify/app`, { method: 'POST' });
    assert.equal(r.status, 201);
    await until('mount event', () => find(endpoint.accepted(), 'mount', layer).length === 1);
    const mount = find(endpoint.accepted(), 'mount', layer)[0]!;
    assert.equal(mount.target.repository, 'notify/other');
    assert.equal(mount.target.fromRepository, 'notify/app');
    assert.equal(mount.target.url, `${b.url}/v2/notify/other/blobs/${layer}`);
    // An automatic mount (no `from`) is a mount too, without a source to name.
    const auto = await fetch(`${b.url}/v2/notify/third/blobs/uploads/?mount=${layer}`, { method: 'POST' });
    assert.equal(auto.status, 201);
    await until('automatic mount event', () => find(endpoint.accepted(), 'mount', layer).length === 2);
    const automatic = find(endpoint.accepted(), 'mount', layer).find((e) => e.target.repository === 'notify/third')!;
    assert.equal(automatic.target.fromRepository, undefined);

    // Deletes: a tag, a manifest, a blob; the target names only what was deleted.
    assert.equal((await fetch(`${b.url}/v2/notify/app/manifests/v1`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${b.url}/v2/notify/app/manifests/${digest}`, { method: 'DELETE' })).status, 202);
    assert.equal((await fetch(`${b.url}/v2/notify/other/blobs/${layer}`, { method: 'DELETE' })).status, 202);
    await until('delete events', () => endpoint.accepted().filter((e) => e.action === 'delete').length === 3);
    const deletes = endpoint.accepted().filter((e) => e.action === 'delete');
    assert.deepEqual(
      deletes.map((e) => e.target),
      [
        { repository: 'notify/app', tag: 'v1' },
        { digest, repository: 'notify/app' },
        { digest: layer, repository: 'notify/other' },
      ],
    );
    assert.ok(deletes.every((e) => e.request?.method === 'DELETE'));
  });

  it('loses nothing through an endpoint outage and a kill -9 mid-queue', async () => {
    const firstInstance = endpoint.accepted()[0]!.source!.instanceID;
    const acceptedBefore = endpoint.accepted().length;
    const attemptsBefore = endpoint.log.length;

    endpoint.failing = true;
    const images: BuiltImage[] = [];
    for (const [i, tag] of ['v2', 'v3', 'v4'].entries()) {
      const image = await buildImage(path.join(work, `layout-${tag}`), { tag, seed: `notify-outage-${i}`, layers: 2 });
      await pushImage(image, `${berth!.host}/notify/outage:${tag}`);
      images.push(image);
    }
    await until('the endpoint to fail past the threshold', () => endpoint.log.length - attemptsBefore >= 5);
    assert.equal(endpoint.accepted().length, acceptedBefore, 'nothing accepted while failing');

    // Kill the registry without warning while its queue holds every event of these pushes.
    await berth!.stop('SIGKILL');
    berth = undefined;
    const store = await MetadataStore.open({ sqlitePath: path.join(root, 'berth.db') });
    const queued = await store.db.selectFrom('notification_queue').select('payload').orderBy('id').execute();
    const state = await store.db.selectFrom('notification_endpoints').selectAll().where('endpoint', '=', 'listener').executeTakeFirstOrThrow();
    await store.close();
    const queuedEvents = queued.map((q) => JSON.parse(q.payload) as RegistryEvent);
    assert.equal(queuedEvents.length, images.length * 4, 'three blobs and a manifest per image are queued');
    assert.ok(state.failures >= 3, `failures recorded: ${state.failures}`);
    assert.match(state.last_error ?? '', /500/);

    // Restart; the endpoint keeps failing for a while, then recovers.
    berth = await spawnBerth(port, env());
    await new Promise((r) => setTimeout(r, 1000));
    const pushedWhileFailing = await buildImage(path.join(work, 'layout-v5'), { tag: 'v5', seed: 'notify-outage-5', layers: 2 });
    await pushImage(pushedWhileFailing, `${berth.host}/notify/outage:v5`);
    endpoint.failing = false;
    await until('every queued event', () => find(endpoint.accepted(), 'push', pushedWhileFailing.manifestDigest).length >= 1, 90_000);

    const after = endpoint.accepted().slice(acceptedBefore);
    // Every event arrives, in the order it was queued, then the newer ones.
    const afterIds = [...new Set(after.map((e) => e.id))];
    assert.deepEqual(afterIds.slice(0, queuedEvents.length), queuedEvents.map((e) => e.id), 'the queue survived the kill in order');
    assert.equal(afterIds.length, queuedEvents.length + 4);
    for (const image of [...images, pushedWhileFailing]) {
      const tag = image.tag;
      for (const blob of image.blobs) assert.equal(find(after, 'push', blob, 'notify/outage').length, 1, `blob push of ${tag}`);
      const m = find(after, 'push', image.manifestDigest, 'notify/outage');
      assert.equal(m.length, 1, `manifest push of ${tag}`);
      assert.equal(m[0]!.target.tag, tag);
    }
    // Events emitted by the new process carry its new instance id.
    const newer = find(after, 'push', pushedWhileFailing.manifestDigest)[0]!;
    assert.notEqual(newer.source?.instanceID, firstInstance);

    // None twice in a row without a failure between: between two accepted
    // deliveries of one event there must be a failed attempt.
    const lastAccepted = new Map<string, number>();
    endpoint.log.forEach((d, i) => {
      if (d.status !== 200) return;
      for (const e of d.events) {
        const prev = lastAccepted.get(e.id);
        if (prev !== undefined) assert.ok(endpoint.log.slice(prev + 1, i).some((x) => x.status !== 200), `event ${e.id} delivered twice with no failure between`);
        lastAccepted.set(e.id, i);
      }
    });
    // And nothing accepted ever repeated here: the kill happened while the endpoint was failing.
    assert.equal(after.length, afterIds.length);
  });
});
