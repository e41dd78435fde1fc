import { checkBodyMediaType, checkSchemaVersion, descriptorList, MediaTypes, topAnnotations } from './types.js';
export const dockerManifestList = {
    mediaType: MediaTypes.dockerManifestList,
    parse(doc) {
        checkSchemaVersion(doc);
        checkBodyMediaType(doc, MediaTypes.dockerManifestList, true);
        const manifests = descriptorList(doc.manifests, 'manifests');
        return {
            mediaType: MediaTypes.dockerManifestList,
            blobs: [],
            manifests: manifests.map((m) => m.digest),
            subject: null,
            artifactType: null,
            annotations: topAnnotations(doc),
        };
    },
};
