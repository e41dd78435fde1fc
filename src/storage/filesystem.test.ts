import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FilesystemBlobStore, place } from './filesystem.js';
import { runDriverSuite } from './suite.js';

runDriverSuite('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-fs-'));
  return { store: new FilesystemBlobStore({ rootDirectory: dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('placing an upload where hard links are refused', () => {
  for (const code of ['EPERM', 'EXDEV']) {
    it(`copies it into place (${code}), keeping the upload to be committed again from`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'berth-place-'));
      try {
        const source = path.join(dir, 'upload');
        const target = path.join(dir, 'blob');
        await writeFile(source, 'the bytes');
        const refuse = () => {
          throw Object.assign(new Error(`link: ${code}`), { code });
        };
        place(source, target, refuse);
        assert.equal(await readFile(target, 'utf8'), 'the bytes');
        assert.equal(await readFile(source, 'utf8'), 'the bytes', 'the upload is still there');
        // A collection removed the bytes; the claim commits again from the upload.
        await rm(target);
        place(source, target, refuse);
        assert.equal(await readFile(target, 'utf8'), 'the bytes');
        assert.deepEqual((await readdir(dir)).sort(), ['blob', 'upload'], 'no temporary file left behind');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it('passes other link errors through', async () => {
    assert.throws(
      () =>
        place('/nonexistent/a', '/nonexistent/b', () => {
          throw Object.assign(new Error('link: ENOENT'), { code: 'ENOENT' });
        }),
      /ENOENT/,
    );
  });
});
