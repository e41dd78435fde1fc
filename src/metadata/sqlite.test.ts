import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetadataStore } from './store.js';
import { runMetadataSuite } from './suite.js';

runMetadataSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-sqlite-'));
  return { store: await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});
