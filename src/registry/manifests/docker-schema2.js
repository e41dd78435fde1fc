import { checkBodyMediaType, checkSchemaVersion, descriptor, descriptorList, isExternalLayer, MediaTypes, topAnnotations } from './types.js';
export const dockerSchema2 = {
    mediaType: MediaTypes.dockerManifest,
    parse(doc) {
        checkSchemaVersion(doc);
        checkBodyMediaType(doc, MediaTypes.dockerManifest, true);
        const config = descriptor(doc.config, 'config');
        const layers = descriptorList(doc.layers, 'layers');
        return {
            mediaType: MediaTypes.dockerManifest,
            blobs: [config.digest, ...layers.filter((l) => !isExternalLayer(l)).map((l) => l.digest)],
            manifests: [],
            subject: null,
            artifactType: config.mediaType,
            annotations: topAnnotations(doc),
        };
    },
};
