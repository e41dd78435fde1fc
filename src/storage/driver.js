export class BlobNotFoundError extends Error {
    digest;
    constructor(digest) {
        super(`blob not found: ${digest}`);
        this.digest = digest;
        this.name = 'BlobNotFoundError';
    }
}
export class UploadNotFoundError extends Error {
    id;
    constructor(id) {
        super(`upload not found: ${id}`);
        this.id = id;
        this.name = 'UploadNotFoundError';
    }
}
export class UploadOffsetError extends Error {
    id;
    expected;
    given;
    constructor(id, expected, given) {
        super(`upload ${id} is at offset ${expected}, not ${given}`);
        this.id = id;
        this.expected = expected;
        this.given = given;
        this.name = 'UploadOffsetError';
    }
}
// Drivers check keys themselves too: nothing un-validated reaches a path.
const DIGEST_KEY_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const UPLOAD_ID_RE = /^[A-Za-z0-9_-]{8,128}$/;
export function assertDigestKey(digest) {
    if (!DIGEST_KEY_RE.test(digest))
        throw new Error(`blob store: refusing malformed digest ${JSON.stringify(digest.slice(0, 200))}`);
}
export function assertUploadId(id) {
    if (!UPLOAD_ID_RE.test(id))
        throw new Error(`blob store: refusing malformed upload id ${JSON.stringify(id.slice(0, 200))}`);
}
