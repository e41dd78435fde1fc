/**
 * The metadata store: the one database handle (database.ts) with the
 * registry's queries (`store.registry`, registry.ts) and the collector's
 * (`store.collection`, collection.ts) on it. The Hub's queries
 * (accounts.ts, credentials.ts, keys.ts, discovery.ts) are built by their
 * callers over the same handle.
 */
import { CollectionQueries } from './collection.js';
import { MetadataDatabase, type Connection, type MetadataOptions } from './database.js';
import { RegistryQueries } from './registry.js';

/** What MetadataStore.open takes. */
export type { MetadataOptions } from './database.js';

export class MetadataStore extends MetadataDatabase {
  readonly registry: RegistryQueries;
  readonly collection: CollectionQueries;

  private constructor(connection: Connection, opts: MetadataOptions) {
    super(connection);
    this.registry = new RegistryQueries(this, opts.newRepositoryVisibility ?? 'public');
    this.collection = new CollectionQueries(this, this.registry);
  }

  /** Opens the database `opts` names and migrates it to the latest schema. */
  static async open(opts: MetadataOptions): Promise<MetadataStore> {
    const store = new MetadataStore(await MetadataDatabase.connect(opts), opts);
    await store.migrate();
    return store;
  }
}
