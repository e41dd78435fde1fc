import { RegistryError } from '../errors.js';
import { parseDigest } from '../reference.js';
export const MediaTypes = {
    dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
    dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
    dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
    dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
    dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    ociManifest: 'application/vnd.oci.image.manifest.v1+json',
    ociIndex: 'application/vnd.oci.image.index.v1+json',
    ociEmpty: 'application/vnd.oci.empty.v1+json',
};
export function invalid(message, detail) {
    return new RegistryError('MANIFEST_INVALID', message, detail);
}
function isObject(v) {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function annotationsOf(v, where) {
    if (v === undefined)
        return undefined;
    if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string'))
        throw invalid(`${where}.annotations must be a map of strings`);
    return v;
}
export function descriptor(v, where) {
    if (!isObject(v))
        throw invalid(`${where} must be a descriptor object`);
    const { mediaType, digest, size, artifactType, urls, platform } = v;
    if (typeof mediaType !== 'string' || mediaType.length === 0)
        throw invalid(`${where}.mediaType must be a non-empty string`);
    if (typeof digest !== 'string')
        throw invalid(`${where}.digest must be a string`);
    try {
        parseDigest(digest);
    }
    catch (err) {
        throw invalid(`${where}.digest is invalid: ${err.message}`, { digest: digest.slice(0, 200) });
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
        throw invalid(`${where}.size must be a non-negative integer`);
    if (artifactType !== undefined && typeof artifactType !== 'string')
        throw invalid(`${where}.artifactType must be a string`);
    if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== 'string')))
        throw invalid(`${where}.urls must be a list of strings`);
    if (platform !== undefined && !isObject(platform))
        throw invalid(`${where}.platform must be an object`);
    const d = { mediaType, digest, size };
    if (artifactType !== undefined)
        d.artifactType = artifactType;
    const annotations = annotationsOf(v.annotations, where);
    if (annotations)
        d.annotations = annotations;
    if (urls !== undefined)
        d.urls = urls;
    if (platform !== undefined)
        d.platform = platform;
    return d;
}
export function descriptorList(v, where) {
    if (!Array.isArray(v))
        throw invalid(`${where} must be a list of descriptors`);
    return v.map((d, i) => descriptor(d, `${where}[${i}]`));
}
export function checkSchemaVersion(doc) {
    if (doc.schemaVersion !== 2)
        throw invalid(`schemaVersion must be 2, got ${JSON.stringify(doc.schemaVersion) ?? 'nothing'}`);
}
export function checkBodyMediaType(doc, expected, required) {
    if (doc.mediaType === undefined && !required)
        return;
    if (doc.mediaType !== expected) {
        throw invalid(`mediaType in manifest should be '${expected}' not '${String(doc.mediaType)}'`);
    }
}
export function topAnnotations(doc) {
    return annotationsOf(doc.annotations, 'manifest') ?? null;
}
export function optionalSubject(doc) {
    return doc.subject === undefined ? null : descriptor(doc.subject, 'subject');
}
/** Layers that live elsewhere (foreign / non-distributable with URLs) need not be pushed. */
export function isExternalLayer(d) {
    return (d.urls?.length ?? 0) > 0 && (d.mediaType === MediaTypes.dockerForeignLayer || d.mediaType.includes('.nondistributable.'));
}
