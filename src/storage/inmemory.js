/** In-memory driver: for tests and throwaway registries (`storage.inmemory`). */
import { Readable } from 'node:stream';
import { assertDigestKey, assertUploadId, BlobNotFoundError, UploadNotFoundError, } from './driver.js';
export class InMemoryBlobStore {
    kind = 'inmemory';
    blobs = new Map();
    uploads = new Map();
    async stat(digest) {
        assertDigestKey(digest);
        const data = this.blobs.get(digest);
        return data ? { digest, size: data.byteLength } : null;
    }
    async get(digest, range) {
        assertDigestKey(digest);
        const data = this.blobs.get(digest);
        if (!data)
            throw new BlobNotFoundError(digest);
        const slice = range ? data.subarray(range.offset, range.offset + range.length) : data;
        return Readable.from([slice], { objectMode: false });
    }
    async delete(digest) {
        assertDigestKey(digest);
        return this.blobs.delete(digest);
    }
    async *list() {
        for (const [digest, data] of [...this.blobs])
            yield { digest, size: data.byteLength };
    }
    async createUpload(id) {
        assertUploadId(id);
        if (this.uploads.has(id))
            throw new Error(`upload ${id} exists`);
        this.uploads.set(id, { data: Buffer.alloc(0), modified: new Date() });
    }
    async uploadSize(id) {
        assertUploadId(id);
        return this.uploads.get(id)?.data.byteLength ?? null;
    }
    async appendUpload(id, offset, chunks) {
        assertUploadId(id);
        const upload = this.uploads.get(id);
        if (!upload)
            throw new UploadNotFoundError(id);
        const parts = [upload.data.subarray(0, offset)];
        for await (const chunk of chunks)
            parts.push(Buffer.from(chunk));
        upload.data = Buffer.concat(parts);
        upload.modified = new Date();
        return upload.data.byteLength;
    }
    async readUpload(id) {
        assertUploadId(id);
        const upload = this.uploads.get(id);
        if (!upload)
            throw new UploadNotFoundError(id);
        return Readable.from([upload.data], { objectMode: false });
    }
    async commitUpload(id, digest) {
        assertUploadId(id);
        assertDigestKey(digest);
        const upload = this.uploads.get(id);
        if (!upload)
            throw new UploadNotFoundError(id);
        this.blobs.set(digest, upload.data);
        this.uploads.delete(id);
    }
    async deleteUpload(id) {
        assertUploadId(id);
        this.uploads.delete(id);
    }
    async *listUploads() {
        for (const [id, u] of [...this.uploads])
            yield { id, size: u.data.byteLength, modified: u.modified };
    }
}
