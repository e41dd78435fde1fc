export { Registry, MAX_MANIFEST_BYTES } from './registry.js';
export { RegistryError, ERROR_CODES, isRegistryError } from './errors.js';
export { assertName, assertTag, parseDigest, parseReference, isValidName } from './reference.js';
export { MediaTypes, MANIFEST_MEDIA_TYPES, parseManifest } from './manifests/index.js';
