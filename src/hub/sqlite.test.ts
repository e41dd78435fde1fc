import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetadataStore } from '../metadata/store.js';
import { runHubSuite } from './suite.js';

runHubSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-hub-'));
  const file = path.join(dir, 'berth.db');
  return {
    store: await MetadataStore.open({ sqlitePath: file }),
    open: (opts = {}) => MetadataStore.open({ ...opts, sqlitePath: file }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
