export { Registry, MAX_MANIFEST_BYTES, everyRepository } from './registry.js';
export type { RegistryOptions, StoredManifest, BlobHandle, Paginated, RepositoryFilter, RepositoryCondition, ManifestObserver, StoredManifestEvent } from './registry.js';
export { RegistryError, ERROR_CODES, isRegistryError } from './errors.js';
export type { ErrorCode } from './errors.js';
export { assertName, assertTag, parseDigest, parseReference, isValidName } from './reference.js';
export { MediaTypes, MANIFEST_MEDIA_TYPES, parseManifest } from './manifests/index.js';
export type { UploadState, ChunkRange } from './uploads.js';
