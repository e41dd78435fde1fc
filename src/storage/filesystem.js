/**
 * Filesystem driver. Layout under the root directory:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed content
 *   uploads/<id>                              uploads in progress
 * A commit fsyncs the upload file, renames it into place (atomic on one
 * filesystem) and fsyncs the target directory, so an acknowledged blob
 * survives a crash and a half-written one is never visible.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { assertDigestKey, assertUploadId, BlobNotFoundError, UploadNotFoundError, } from './driver.js';
function isNotFound(err) {
    return err?.code === 'ENOENT';
}
export class FilesystemBlobStore {
    kind = 'filesystem';
    blobsDir;
    uploadsDir;
    fsync;
    madeDirs = new Set();
    constructor(opts) {
        this.blobsDir = path.join(opts.rootDirectory, 'blobs');
        this.uploadsDir = path.join(opts.rootDirectory, 'uploads');
        this.fsync = opts.fsync ?? true;
    }
    blobPath(digest) {
        assertDigestKey(digest);
        const [algorithm, hex] = digest.split(':');
        return path.join(this.blobsDir, algorithm, hex.slice(0, 2), hex);
    }
    uploadPath(id) {
        assertUploadId(id);
        return path.join(this.uploadsDir, id);
    }
    async ensureDir(dir) {
        if (this.madeDirs.has(dir))
            return;
        await mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
    }
    async stat(digest) {
        try {
            const s = await stat(this.blobPath(digest));
            return { digest, size: s.size };
        }
        catch (err) {
            if (isNotFound(err))
                return null;
            throw err;
        }
    }
    async get(digest, range) {
        const file = this.blobPath(digest);
        // Open first so a missing blob rejects here rather than erroring mid-response.
        let fh;
        try {
            fh = await open(file, 'r');
        }
        catch (err) {
            if (isNotFound(err))
                throw new BlobNotFoundError(digest);
            throw err;
        }
        const opts = { fd: fh, highWaterMark: 256 * 1024 };
        if (range) {
            opts.start = range.offset;
            opts.end = range.offset + range.length - 1;
        }
        return createReadStream(file, opts);
    }
    async delete(digest) {
        try {
            await rm(this.blobPath(digest));
            return true;
        }
        catch (err) {
            if (isNotFound(err))
                return false;
            throw err;
        }
    }
    async *list() {
        for (const algorithm of await readdirOrEmpty(this.blobsDir)) {
            for (const prefix of await readdirOrEmpty(path.join(this.blobsDir, algorithm))) {
                for (const hex of await readdirOrEmpty(path.join(this.blobsDir, algorithm, prefix))) {
                    const digest = `${algorithm}:${hex}`;
                    const info = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.test(digest) ? await this.stat(digest) : null;
                    if (info)
                        yield info;
                }
            }
        }
    }
    async createUpload(id) {
        await this.ensureDir(this.uploadsDir);
        const fh = await open(this.uploadPath(id), 'wx');
        await fh.close();
    }
    async uploadSize(id) {
        try {
            return (await stat(this.uploadPath(id))).size;
        }
        catch (err) {
            if (isNotFound(err))
                return null;
            throw err;
        }
    }
    async appendUpload(id, offset, chunks) {
        let fh;
        try {
            fh = await open(this.uploadPath(id), 'r+');
        }
        catch (err) {
            if (isNotFound(err))
                throw new UploadNotFoundError(id);
            throw err;
        }
        let position = offset;
        try {
            // A crashed writer may have left bytes past `offset`; they are replaced.
            const { size } = await fh.stat();
            if (size > offset)
                await fh.truncate(offset);
            for await (const chunk of chunks) {
                let written = 0;
                while (written < chunk.byteLength) {
                    const r = await fh.write(chunk, written, chunk.byteLength - written, position);
                    written += r.bytesWritten;
                    position += r.bytesWritten;
                }
            }
        }
        finally {
            await fh.close();
        }
        return position;
    }
    async readUpload(id) {
        const file = this.uploadPath(id);
        try {
            const fh = await open(file, 'r');
            return createReadStream(file, { fd: fh, highWaterMark: 256 * 1024 });
        }
        catch (err) {
            if (isNotFound(err))
                throw new UploadNotFoundError(id);
            throw err;
        }
    }
    async commitUpload(id, digest) {
        const source = this.uploadPath(id);
        const target = this.blobPath(digest);
        if (this.fsync) {
            let fh;
            try {
                fh = await open(source, 'r');
            }
            catch (err) {
                if (isNotFound(err))
                    throw new UploadNotFoundError(id);
                throw err;
            }
            try {
                await fh.sync();
            }
            finally {
                await fh.close();
            }
        }
        const dir = path.dirname(target);
        await this.ensureDir(dir);
        try {
            await rename(source, target);
        }
        catch (err) {
            if (!isNotFound(err))
                throw err;
            // The directory may have been removed under us (e.g. by a collector); retry once.
            this.madeDirs.delete(dir);
            await this.ensureDir(dir);
            try {
                await rename(source, target);
            }
            catch (err2) {
                if (isNotFound(err2))
                    throw new UploadNotFoundError(id);
                throw err2;
            }
        }
        if (this.fsync)
            await syncDir(dir);
    }
    async deleteUpload(id) {
        await rm(this.uploadPath(id), { force: true });
    }
    async *listUploads() {
        for (const id of await readdirOrEmpty(this.uploadsDir)) {
            try {
                const s = await stat(path.join(this.uploadsDir, id));
                yield { id, size: s.size, modified: s.mtime };
            }
            catch (err) {
                if (!isNotFound(err))
                    throw err;
            }
        }
    }
    /** Truncates an upload (test hook for crash simulation); not part of the interface. */
    async truncateUpload(id, size) {
        await truncate(this.uploadPath(id), size);
    }
}
async function readdirOrEmpty(dir) {
    try {
        return await readdir(dir);
    }
    catch (err) {
        if (isNotFound(err))
            return [];
        throw err;
    }
}
async function syncDir(dir) {
    const fh = await open(dir, 'r');
    try {
        await fh.sync();
    }
    finally {
        await fh.close();
    }
}
