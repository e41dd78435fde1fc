/**
 * `berth backfill config.yml` as a person runs it after an upgrade: images
 * whose details (size, platform) were never recorded, as a database from
 * before migration 0012 holds them, get them, with a summary; a second run
 * has nothing left to do.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { CLI_ENTRY } from '../support/berth.js';
import { run } from '../support/tools.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('berth backfill', () => {
  let dir: string;
  let config: string;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))) as Record<string, string>;

  const open = async () => createApp((await loadConfig(config, {})).config, pino({ level: 'silent' }));
  const sizes = async () => {
    const app = await open();
    try {
      const tags = await app.discovery.pages.tags({ kind: 'anonymous' }, 'old/app', { sort: 'name' });
      return tags.results.map((t) => [t.name, t.full_size, t.images.map((i) => `${i.os}/${i.architecture}`)]);
    } finally {
      await app.close();
    }
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-backfill-'));
    config = path.join(dir, 'config.yml');
    await writeFile(config, ['version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, ''].join('\n'));
    const app = await open();
    try {
      const put = async (bytes: Buffer) => {
        await app.registry.uploads.putWhole('old/app', sha(bytes), (async function* () {
          yield bytes;
        })());
        return { digest: sha(bytes), size: bytes.byteLength };
      };
      const configBlob = await put(Buffer.from(JSON.stringify({ architecture: 'riscv64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
      const layer = await put(Buffer.from('the only layer'));
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
        }),
      );
      await app.registry.putManifest('old/app', 'v1', 'application/vnd.oci.image.manifest.v1+json', manifest);
      // As a database from before migration 0012 holds it: no details at all.
      await app.meta.db.deleteFrom('manifest_info').execute();
      await app.meta.db.deleteFrom('manifest_platforms').execute();
    } finally {
      await app.close();
    }
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('records the details of images pushed before, once, with a summary', async () => {
    assert.deepEqual(await sizes(), [['v1', null, []]]);
    const first = await run(process.execPath, [CLI_ENTRY, 'backfill', config], { env });
    assert.match(first.stdout, /^1 manifests recorded/m);
    assert.match(first.stderr, /recorded 1/, 'progress');
    const configSize = JSON.stringify({ architecture: 'riscv64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }).length;
    assert.deepEqual(await sizes(), [['v1', configSize + 'the only layer'.length, ['linux/riscv64']]]);
    const second = await run(process.execPath, [CLI_ENTRY, 'backfill', config], { env });
    assert.match(second.stdout, /nothing to record/);
  });
});
