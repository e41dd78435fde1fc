import { checkBodyMediaType, checkSchemaVersion, descriptorList, invalid, MediaTypes, optionalSubject, topAnnotations } from './types.js';
export const ociIndex = {
    mediaType: MediaTypes.ociIndex,
    parse(doc) {
        checkSchemaVersion(doc);
        checkBodyMediaType(doc, MediaTypes.ociIndex, false);
        const manifests = descriptorList(doc.manifests, 'manifests');
        if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string')
            throw invalid('artifactType must be a string');
        return {
            mediaType: MediaTypes.ociIndex,
            blobs: [],
            manifests: manifests.map((m) => m.digest),
            subject: optionalSubject(doc),
            artifactType: doc.artifactType ?? null,
            annotations: topAnnotations(doc),
        };
    },
};
