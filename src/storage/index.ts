export type { AppendOptions, BlobStore, BlobInfo, BlobReader, ByteRange, UploadInfo } from './driver.js';
export { BlobNotFoundError, openReader, UploadHash, UploadNotFoundError } from './driver.js';
export type { BlobFile } from './driver.js';
export { FilesystemBlobStore } from './filesystem.js';
export { InMemoryBlobStore } from './inmemory.js';
