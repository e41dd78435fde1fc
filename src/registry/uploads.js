/**
 * Blob upload sessions (OCI dist-spec "Pushing blobs"). Session records live
 * in the metadata database and bytes in the blob store, so a session
 * survives a restart and can be continued by any replica.
 *
 * Hashing is done while the bytes stream in. node:crypto cannot serialise a
 * hash state, so the running hash is kept in this process only as long as
 * the chain of appends is unbroken; when it is not (restart, another worker,
 * sha512 requested), the upload is re-read once at commit time.
 */
import { createHash, randomUUID } from 'node:crypto';
import { UploadNotFoundError } from '../storage/index.js';
import { digestStream, hashing } from './digest.js';
import { RegistryError } from './errors.js';
import { parseDigest } from './reference.js';
const MAX_RUNNING_HASHES = 10_000;
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;
export class Uploads {
    meta;
    store;
    running = new Map();
    locks = new Map();
    constructor(meta, store) {
        this.meta = meta;
        this.store = store;
    }
    async start(repository) {
        const id = randomUUID();
        await this.store.createUpload(id);
        await this.meta.createUpload(id, repository);
        this.remember(id, { hash: createHash('sha256'), offset: 0 });
        return { id, repository, size: 0 };
    }
    async status(repository, id) {
        if (!UPLOAD_ID_RE.test(id))
            throw unknownUpload(id);
        const session = await this.meta.upload(id);
        // An upload belongs to the repository it was started in.
        if (!session || session.repository !== repository)
            throw unknownUpload(id);
        const size = await this.store.uploadSize(id);
        if (size === null)
            throw unknownUpload(id);
        return { id, repository, size };
    }
    /** Appends a chunk (PATCH). A range that does not start at the current size is refused with 416. */
    async append(repository, id, body, range, length) {
        return this.exclusive(id, () => this.appendLocked(repository, id, body, range, length));
    }
    async appendLocked(repository, id, body, range, length) {
        const state = await this.status(repository, id);
        if (range) {
            if (range.start !== state.size || range.end < range.start - 1)
                throw rangeError(state, `chunk starts at ${range.start} but the upload holds ${state.size} bytes`);
            if (length !== undefined && range.end - range.start + 1 !== length) {
                throw rangeError(state, `Content-Range ${range.start}-${range.end} does not match Content-Length ${length}`);
            }
        }
        let running = this.running.get(id);
        if (running && running.offset !== state.size)
            running = undefined;
        // A fresh (or reset) upload can start a running hash at any process.
        if (!running && state.size === 0)
            running = { hash: createHash('sha256'), offset: 0 };
        const counter = { bytes: 0 };
        this.running.delete(id); // re-added only if the append completes
        let size;
        try {
            size = await this.store.appendUpload(id, state.size, hashing(body, running?.hash ?? null, counter));
        }
        catch (err) {
            if (err instanceof UploadNotFoundError)
                throw unknownUpload(id);
            throw err;
        }
        if (running)
            this.remember(id, { hash: running.hash, offset: size });
        if (length !== undefined && counter.bytes !== length) {
            throw new RegistryError('SIZE_INVALID', `received ${counter.bytes} bytes but Content-Length was ${length}`);
        }
        await this.meta.touchUpload(id);
        return { ...state, size };
    }
    /**
     * Completes an upload (PUT ?digest=), optionally with a last chunk, and
     * makes the blob visible only if its content matches `digest`.
     */
    async finish(repository, id, digest, body, range, length) {
        const { algorithm } = parseDigest(digest);
        return this.exclusive(id, async () => {
            let state = await this.status(repository, id);
            if (body)
                state = await this.appendLocked(repository, id, body, range, length);
            const running = this.running.get(id);
            this.running.delete(id);
            let actual;
            if (running && running.offset === state.size && algorithm === 'sha256') {
                actual = `sha256:${running.hash.digest('hex')}`;
            }
            else {
                actual = (await digestStream(await this.store.readUpload(id), algorithm)).digest;
            }
            if (actual !== digest) {
                // As distribution does: a failed verification cancels the upload.
                await this.discard(id);
                throw new RegistryError('DIGEST_INVALID', `provided digest ${digest} did not match uploaded content (${actual})`, { digest, actual });
            }
            await this.store.commitUpload(id, digest);
            await this.meta.linkBlob(repository, digest, state.size);
            await this.meta.deleteUpload(id);
            return { digest, size: state.size };
        });
    }
    async cancel(repository, id) {
        await this.exclusive(id, async () => {
            await this.status(repository, id);
            await this.discard(id);
        });
    }
    /** A whole blob in one request (POST ?digest= or PUT after POST). */
    async putWhole(repository, digest, body, length) {
        parseDigest(digest);
        const { id } = await this.start(repository);
        try {
            return await this.finish(repository, id, digest, body, undefined, length);
        }
        catch (err) {
            await this.discard(id).catch(() => { });
            throw err;
        }
    }
    async discard(id) {
        this.running.delete(id);
        await this.store.deleteUpload(id);
        await this.meta.deleteUpload(id);
    }
    remember(id, r) {
        if (this.running.size >= MAX_RUNNING_HASHES) {
            const oldest = this.running.keys().next().value;
            if (oldest !== undefined)
                this.running.delete(oldest);
        }
        this.running.set(id, r);
    }
    /** Serialises work on one upload within this process. */
    async exclusive(id, fn) {
        const previous = this.locks.get(id) ?? Promise.resolve();
        const next = previous.catch(() => { }).then(fn);
        this.locks.set(id, next);
        try {
            return await next;
        }
        finally {
            if (this.locks.get(id) === next)
                this.locks.delete(id);
        }
    }
}
function unknownUpload(id) {
    return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid: id.slice(0, 128) });
}
function rangeError(state, message) {
    // OCI dist-spec: an out-of-order chunk gets 416 with the current Range.
    return new RegistryError('RANGE_INVALID', message, { uploaded: state.size }, {
        status: 416,
        headers: { Range: `0-${Math.max(0, state.size - 1)}`, 'Docker-Upload-UUID': state.id },
    });
}
