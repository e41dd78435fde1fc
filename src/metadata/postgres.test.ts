// The metadata suite against a real PostgreSQL (Debian's package), started
// by the test itself on a loopback port with its own data directory.
import { startPostgres } from '../../test/support/postgres.js';
import { MetadataStore } from './store.js';
import { runMetadataSuite } from './suite.js';

runMetadataSuite('postgres', async () => {
  const pg = await startPostgres();
  return { store: await MetadataStore.open({ url: pg.url }), cleanup: () => pg.stop() };
});
