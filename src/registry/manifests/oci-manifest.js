import { checkBodyMediaType, checkSchemaVersion, descriptor, descriptorList, invalid, isExternalLayer, MediaTypes, optionalSubject, topAnnotations } from './types.js';
/** OCI image manifest, which since image-spec 1.1 also carries artifacts (artifactType, empty config). */
export const ociManifest = {
    mediaType: MediaTypes.ociManifest,
    parse(doc) {
        checkSchemaVersion(doc);
        checkBodyMediaType(doc, MediaTypes.ociManifest, false);
        const config = descriptor(doc.config, 'config');
        const layers = doc.layers === undefined ? [] : descriptorList(doc.layers, 'layers');
        if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string')
            throw invalid('artifactType must be a string');
        return {
            mediaType: MediaTypes.ociManifest,
            blobs: [config.digest, ...layers.filter((l) => !isExternalLayer(l)).map((l) => l.digest)],
            manifests: [],
            subject: optionalSubject(doc),
            // image-spec 1.1: an artifact's type is artifactType, else the config's media type.
            artifactType: doc.artifactType ?? config.mediaType,
            annotations: topAnnotations(doc),
        };
    },
};
