export { MetadataStore } from './store.js';
export { RepositoryBeingDeletedError, RepositoryDeletedError, StillReferencedError } from './registry.js';
export { WriteGate } from './gate.js';
export type { MetadataDatabase, MetadataOptions } from './database.js';
export type { RegistryQueries, ManifestRecord, NewManifest, PutManifestResult, Page } from './registry.js';
export type { CollectionQueries, GcRunOptions, GcRunRow, CollectableManifest, StorageUsage } from './collection.js';
export { WalCheckpointer, SAFETY_NET_PAGES } from './checkpointer.js';
