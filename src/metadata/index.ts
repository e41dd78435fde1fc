export { MetadataStore, RepositoryBeingDeletedError, RepositoryDeletedError, StillReferencedError } from './store.js';
export { WriteGate } from './gate.js';
export type { GcRunOptions, GcRunRow, CollectableManifest, StorageUsage, ManifestRecord, NewManifest, PutManifestResult, Page, MetadataOptions } from './store.js';
export { WalCheckpointer, SAFETY_NET_PAGES } from './checkpointer.js';
