export type { BlobStore, BlobInfo, BlobReader, ByteRange, UploadInfo } from './driver.js';
export { BlobNotFoundError, openReader, UploadNotFoundError } from './driver.js';
export { FilesystemBlobStore } from './filesystem.js';
export { InMemoryBlobStore } from './inmemory.js';
