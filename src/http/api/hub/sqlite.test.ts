// The JSON API's suite on SQLite (a database file in a temporary directory).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetadataStore } from '../../../metadata/store.js';
import { runApiSuite } from './suite.js';

runApiSuite('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-hubapi-'));
  return {
    store: await MetadataStore.open({ sqlitePath: path.join(dir, 'berth.db') }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
