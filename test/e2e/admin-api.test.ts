/**
 * Berth's own API (/berth/v1/: gc, repository delete, storage usage) is
 * for administrators (issue 14): with htpasswd, only the users berth.admins
 * names; with htpasswd and no list, nobody (403 DENIED); with no auth at
 * all, everyone, as before.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { startBerth, type TestBerth } from '../support/berth.js';

const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const alice = basic('alice', 'alice-pw');
const bob = basic('bob', 'bob-pw');

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes a one-blob OCI image as `repo:v1` with monolithic uploads. */
async function pushTiny(base: string, repo: string, auth: Record<string, string> = {}): Promise<void> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const up = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: config });
  assert.equal(up.status, 201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.byteLength },
    layers: [],
  });
  const put = await fetch(`${base}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { ...auth, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201);
}

/**
 * The administrators' calls, each with what a permitted caller gets. (A
 * repository's page is not one: with htpasswd every user reads it, as every
 * user pulls through /v2/.)
 */
const CALLS = [
  { what: 'storage usage', method: 'GET', path: '/berth/v1/storage', ok: 200 },
  { what: 'a dry-run collection', method: 'POST', path: '/berth/v1/gc?dryrun=true&wait=true', ok: 200 },
] as const;

async function denied(r: Response): Promise<string> {
  assert.equal(r.status, 403);
  const body = (await r.json()) as { errors: { code: string; message: string }[] };
  assert.equal(body.errors[0]!.code, 'DENIED');
  return body.errors[0]!.message;
}

let work: string;
let htpasswd: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'berth-admin-'));
  htpasswd = path.join(work, 'htpasswd');
  await writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-pw', 4)}\nbob:${bcrypt.hashSync('bob-pw', 4)}\n`);
});
after(() => rm(work, { recursive: true, force: true }));

describe('htpasswd with berth.admins: [alice]', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_AUTH_HTPASSWD_PATH: htpasswd, REGISTRY_AUTH_HTPASSWD_REALM: 'test', REGISTRY_BERTH_ADMINS: '[alice]' });
    await pushTiny(b.url, 'admin/app', bob);
  });
  after(() => b?.close());

  it('an admin may read usage and run a collection', async () => {
    for (const c of CALLS) assert.equal((await fetch(`${b.url}${c.path}`, { method: c.method, headers: alice })).status, c.ok, c.what);
  });

  it('another user is refused with 403 DENIED and deletes nothing, yet still pushes and pulls through /v2/ and reads the repository', async () => {
    for (const c of CALLS) await denied(await fetch(`${b.url}${c.path}`, { method: c.method, headers: bob }));
    const page = await fetch(`${b.url}/berth/v1/repositories/admin/app`, { headers: bob });
    assert.equal(page.status, 200);
    assert.equal(((await page.json()) as { tags: number }).tags, 1);
    await denied(await fetch(`${b.url}/berth/v1/repositories/admin/app`, { method: 'DELETE', headers: bob }));
    assert.equal((await fetch(`${b.url}/v2/admin/app/manifests/v1`, { headers: { ...bob, Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  });

  it('no credentials: 401, as for /v2/', async () => {
    const r = await fetch(`${b.url}/berth/v1/storage`);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
  });

  it('the admin deletes the repository', async () => {
    const del = await fetch(`${b.url}/berth/v1/repositories/admin/app`, { method: 'DELETE', headers: alice });
    assert.equal(del.status, 202);
    assert.equal((await fetch(`${b.url}/v2/admin/app/manifests/v1`, { headers: alice })).status, 404);
  });
});

describe('htpasswd without berth.admins', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_AUTH_HTPASSWD_PATH: htpasswd, REGISTRY_AUTH_HTPASSWD_REALM: 'test' });
    await pushTiny(b.url, 'admin/app', alice);
  });
  after(() => b?.close());

  it('every user is refused with 403 DENIED, naming the missing setting, and /v2/ is untouched', async () => {
    for (const who of [alice, bob]) {
      for (const c of CALLS) assert.match(await denied(await fetch(`${b.url}${c.path}`, { method: c.method, headers: who })), /berth\.admins/);
      await denied(await fetch(`${b.url}/berth/v1/repositories/admin/app`, { method: 'DELETE', headers: who }));
    }
    assert.equal((await fetch(`${b.url}/v2/admin/app/manifests/v1`, { headers: { ...alice, Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
    assert.ok(b.logs.some((l) => l.includes('berth.admins is empty')), 'the start-up log says so');
  });
});

describe('no auth (an anonymous registry)', () => {
  let b: TestBerth;
  before(async () => {
    b = await startBerth({ REGISTRY_BERTH_ADMINS: '[alice]' });
    await pushTiny(b.url, 'admin/app');
  });
  after(() => b?.close());

  it('the API stays open to everyone, as before', async () => {
    for (const c of CALLS) assert.equal((await fetch(`${b.url}${c.path}`, { method: c.method })).status, c.ok, c.what);
    assert.equal((await fetch(`${b.url}/berth/v1/repositories/admin/app`, { method: 'DELETE' })).status, 202);
  });
});
