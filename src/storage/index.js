export { BlobNotFoundError, UploadNotFoundError } from './driver.js';
export { FilesystemBlobStore } from './filesystem.js';
export { InMemoryBlobStore } from './inmemory.js';
