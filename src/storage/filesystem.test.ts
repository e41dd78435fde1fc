import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FilesystemBlobStore } from './filesystem.js';
import { runDriverSuite } from './suite.js';

runDriverSuite('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-fs-'));
  return { store: new FilesystemBlobStore({ rootDirectory: dir }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
