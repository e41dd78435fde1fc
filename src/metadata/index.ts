export { MetadataStore } from './store.js';
export type { ManifestRecord, NewManifest, PutManifestResult, Page, MetadataOptions } from './store.js';
