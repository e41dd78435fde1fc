// The discovery suite against a real PostgreSQL (Debian's package, with contrib's pg_trgm), started by the test itself.
import { startPostgres } from '../../test/support/postgres.js';
import { MetadataStore } from '../metadata/store.js';
import { runDiscoverySuite } from './discovery-suite.js';

runDiscoverySuite('postgres', async () => {
  const pg = await startPostgres();
  return {
    store: await MetadataStore.open({ url: pg.url, newRepositoryVisibility: 'private' }),
    open: () => MetadataStore.open({ url: pg.url, newRepositoryVisibility: 'private' }),
    cleanup: () => pg.stop(),
  };
});
