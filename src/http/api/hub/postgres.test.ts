// The JSON API's suite against a real PostgreSQL (Debian's package), started by the test itself.
import { startPostgres } from '../../../../test/support/postgres.js';
import { MetadataStore } from '../../../metadata/store.js';
import { runApiSuite } from './suite.js';

runApiSuite('postgres', async () => {
  const pg = await startPostgres();
  return {
    store: await MetadataStore.open({ url: pg.url }),
    cleanup: () => pg.stop(),
  };
});
