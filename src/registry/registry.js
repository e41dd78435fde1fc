/**
 * The registry domain: Namespace → Repository → {Blobs, Uploads, Manifests,
 * Tags, Referrers}. It speaks in names, digests and streams; it knows
 * nothing of HTTP. Errors are RegistryErrors from the one catalogue.
 */
import { randomUUID } from 'node:crypto';
import { BlobNotFoundError } from '../storage/index.js';
import { digestOf } from './digest.js';
import { RegistryError } from './errors.js';
import { parseManifest, MediaTypes } from './manifests/index.js';
import { assertName, assertTag, parseDigest, parseReference } from './reference.js';
import { Uploads } from './uploads.js';
import { ByteLimitedCache } from './cache.js';
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export class Registry {
    meta;
    store;
    options;
    uploads;
    manifestCache;
    constructor(meta, store, options) {
        this.meta = meta;
        this.store = store;
        this.options = options;
        this.uploads = new Uploads(meta, store);
        this.manifestCache = new ByteLimitedCache(options.manifestCacheBytes ?? 64 * 1024 * 1024);
    }
    assertWritable() {
        if (this.options.readOnly)
            throw new RegistryError('UNSUPPORTED', 'the registry is in read-only mode');
    }
    assertDeletable() {
        this.assertWritable();
        if (!this.options.deleteEnabled)
            throw new RegistryError('UNSUPPORTED', 'deletes are disabled on this registry (storage.delete.enabled is false)');
    }
    // ---- blobs ----------------------------------------------------------------
    async statBlob(repository, digest) {
        assertName(repository);
        parseDigest(digest);
        const linked = await this.meta.linkedBlob(repository, digest);
        if (!linked)
            throw blobUnknown(digest);
        return { digest, size: linked.size };
    }
    async openBlob(repository, digest, range) {
        try {
            return await this.store.get(digest, range);
        }
        catch (err) {
            if (err instanceof BlobNotFoundError)
                throw blobUnknown(digest);
            throw err;
        }
    }
    async blobRedirect(digest, method) {
        return this.store.redirectURL ? this.store.redirectURL(digest, method) : null;
    }
    async deleteBlob(repository, digest) {
        this.assertDeletable();
        assertName(repository);
        parseDigest(digest);
        if (!(await this.meta.unlinkBlob(repository, digest)))
            throw blobUnknown(digest);
    }
    /**
     * Cross-repository mount: links `digest` from `from` into `repository` when
     * it is there. Returns false when it is not (the caller then starts an upload).
     */
    async mountBlob(repository, digest, from) {
        this.assertWritable();
        assertName(repository);
        parseDigest(digest);
        assertName(from);
        const linked = await this.meta.linkedBlob(from, digest);
        if (!linked || !(await this.store.stat(digest)))
            return null;
        await this.meta.linkBlob(repository, digest, linked.size);
        return { digest, size: linked.size };
    }
    // ---- manifests --------------------------------------------------------------
    async getManifest(repository, reference) {
        assertName(repository);
        const ref = parseReference(reference);
        const record = ref.kind === 'tag' ? await this.meta.manifestByTag(repository, ref.tag) : await this.meta.manifestByDigest(repository, ref.digest);
        if (!record)
            throw manifestUnknown(reference);
        return { digest: record.digest, mediaType: record.mediaType, size: record.size, body: await this.manifestBody(record) };
    }
    async manifestBody(record) {
        const cached = this.manifestCache.get(record.digest);
        if (cached)
            return cached;
        let stream;
        try {
            stream = await this.store.get(record.digest);
        }
        catch (err) {
            if (err instanceof BlobNotFoundError)
                throw manifestUnknown(record.digest);
            throw err;
        }
        const parts = [];
        for await (const chunk of stream)
            parts.push(chunk);
        const body = Buffer.concat(parts);
        this.manifestCache.set(record.digest, body);
        return body;
    }
    /**
     * Stores a manifest under a tag or digest reference (plus any extra `tags`)
     * after validating it and checking that everything it references exists.
     */
    async putManifest(repository, reference, contentType, body, extraTags = []) {
        this.assertWritable();
        assertName(repository);
        const ref = parseReference(reference);
        extraTags.forEach(assertTag);
        if (body.byteLength > MAX_MANIFEST_BYTES) {
            throw new RegistryError('MANIFEST_INVALID', `manifest is ${body.byteLength} bytes; the limit is ${MAX_MANIFEST_BYTES}`, undefined, { status: 413 });
        }
        const parsed = parseManifest(contentType, body);
        const algorithm = ref.kind === 'digest' ? parseDigest(ref.digest).algorithm : 'sha256';
        const digest = digestOf(body, algorithm);
        if (ref.kind === 'digest' && ref.digest !== digest) {
            throw new RegistryError('DIGEST_INVALID', `manifest digest ${digest} does not match the reference ${ref.digest}`, { digest: ref.digest, actual: digest });
        }
        // Bytes first, metadata second: metadata never points at missing content.
        if (!(await this.store.stat(digest)))
            await this.putBytes(repository, digest, body);
        const result = await this.meta.putManifest(repository, {
            digest,
            mediaType: parsed.mediaType,
            size: body.byteLength,
            artifactType: parsed.artifactType,
            subjectDigest: parsed.subject?.digest ?? null,
            annotations: parsed.annotations,
            blobs: parsed.blobs,
            manifests: parsed.manifests,
        }, ref.kind === 'tag' ? [ref.tag, ...extraTags] : extraTags);
        if (!result.ok) {
            const missing = [...result.missingBlobs, ...result.missingManifests];
            throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length === 1 ? 'a blob or manifest' : `${missing.length} blobs or manifests`} unknown to this repository: ${missing.slice(0, 5).join(', ')}`, {
                digests: missing,
            });
        }
        this.manifestCache.set(digest, body);
        return { digest, subject: parsed.subject };
    }
    async putBytes(repository, digest, body) {
        const id = randomUUID();
        await this.store.createUpload(id);
        try {
            await this.store.appendUpload(id, 0, (async function* () {
                yield body;
            })());
            await this.store.commitUpload(id, digest);
        }
        catch (err) {
            await this.store.deleteUpload(id).catch(() => { });
            throw err;
        }
    }
    /** DELETE by tag removes only the tag; by digest, the manifest and every tag on it. */
    async deleteManifest(repository, reference) {
        this.assertDeletable();
        assertName(repository);
        const ref = parseReference(reference);
        if (ref.kind === 'tag') {
            if (!(await this.meta.deleteTag(repository, ref.tag)))
                throw manifestUnknown(reference);
            return { kind: 'tag' };
        }
        if (!(await this.meta.deleteManifest(repository, ref.digest)))
            throw manifestUnknown(reference);
        return { kind: 'digest', digest: ref.digest };
    }
    // ---- listings -------------------------------------------------------------------
    async listTags(repository, n, last) {
        assertName(repository);
        const limit = n ?? 1_000_000;
        if (limit === 0) {
            if ((await this.meta.repositoryId(repository)) === null)
                throw nameUnknown(repository);
            return { items: [] };
        }
        const tags = await this.meta.listTags(repository, { after: last, limit: limit + 1 });
        if (tags === null)
            throw nameUnknown(repository);
        return page(tags, limit);
    }
    async catalog(n, last, maxEntries = 1000) {
        const limit = Math.min(n ?? maxEntries, maxEntries);
        if (limit === 0)
            return { items: [] };
        return page(await this.meta.listRepositories({ after: last, limit: limit + 1 }), limit);
    }
    /** The referrers of `digest` as an OCI image index (dist-spec "Listing Referrers"). */
    async referrers(repository, digest, artifactType) {
        assertName(repository);
        parseDigest(digest);
        const rows = await this.meta.referrers(repository, digest, artifactType);
        const manifests = rows.map((r) => {
            const d = { mediaType: r.mediaType, digest: r.digest, size: r.size };
            if (r.artifactType)
                d.artifactType = r.artifactType;
            if (r.annotations)
                d.annotations = r.annotations;
            return d;
        });
        return { index: { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }, filtered: artifactType !== undefined };
    }
}
function page(rows, limit) {
    if (rows.length > limit)
        return { items: rows.slice(0, limit), next: rows[limit - 1] };
    return { items: rows };
}
export function blobUnknown(digest) {
    return new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
}
export function manifestUnknown(reference) {
    return new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown to registry', { reference });
}
export function nameUnknown(name) {
    return new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name });
}
