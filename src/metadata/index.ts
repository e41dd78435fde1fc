export { MetadataStore } from './store.js';
export type { CollectableManifest, StorageUsage, ManifestRecord, NewManifest, PutManifestResult, Page, MetadataOptions } from './store.js';
