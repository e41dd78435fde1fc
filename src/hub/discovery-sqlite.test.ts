import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetadataStore } from '../metadata/store.js';
import { runDiscoverySuite } from './discovery-suite.js';

runDiscoverySuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-discovery-'));
  const file = path.join(dir, 'berth.db');
  return {
    store: await MetadataStore.open({ sqlitePath: file, newRepositoryVisibility: 'private' }),
    open: () => MetadataStore.open({ sqlitePath: file, newRepositoryVisibility: 'private' }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
