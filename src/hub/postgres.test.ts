// The Hub's suite against a real PostgreSQL (Debian's package), started by the test itself.
import { startPostgres } from '../../test/support/postgres.js';
import { MetadataStore } from '../metadata/store.js';
import { runHubSuite } from './suite.js';

runHubSuite('postgres', async () => {
  const pg = await startPostgres();
  return {
    store: await MetadataStore.open({ url: pg.url }),
    open: (opts = {}) => MetadataStore.open({ ...opts, url: pg.url }),
    cleanup: () => pg.stop(),
  };
});
