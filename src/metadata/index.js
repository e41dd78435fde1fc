export { MetadataStore } from './store.js';
