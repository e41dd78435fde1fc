/**
 * Manifest parsing: picks the handler for a pushed manifest from its
 * Content-Type and body, and refuses what Berth does not store (schema1).
 */
import { dockerManifestList } from './docker-manifest-list.js';
import { dockerSchema2 } from './docker-schema2.js';
import { ociIndex } from './oci-index.js';
import { ociManifest } from './oci-manifest.js';
import { jsonShapeProblem } from './json-shape.js';
import { invalid, MediaTypes, type ManifestHandler, type ParsedManifest } from './types.js';

export { MediaTypes } from './types.js';
export type { Descriptor, ParsedManifest, ManifestHandler } from './types.js';

const handlers = new Map<string, ManifestHandler>([dockerSchema2, dockerManifestList, ociManifest, ociIndex].map((h) => [h.mediaType, h]));

export const MANIFEST_MEDIA_TYPES: readonly string[] = [...handlers.keys()];

const GENERIC_CONTENT_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'text/plain']);
const SCHEMA1_TYPES = new Set([MediaTypes.dockerSchema1, MediaTypes.dockerSchema1Signed, 'application/json; charset=utf-8']);

const SCHEMA1_MESSAGE =
  'Docker image manifest schema 1 is not supported: it was deprecated in 2015 and removed from the distribution registry; push the image again with a current client (or convert it with `skopeo copy --format v2s2`)';

/**
 * Parses a manifest body. `contentType` is the request's Content-Type; when it
 * is absent or generic, the body's own `mediaType` decides.
 */
export function parseManifest(contentType: string | undefined, body: Buffer): ParsedManifest {
  const ct = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct === MediaTypes.dockerSchema1 || ct === MediaTypes.dockerSchema1Signed) throw invalid(SCHEMA1_MESSAGE);

  // Before JSON.parse: what a 4 MiB body can build is bounded by its shape, not its size.
  const tooComplex = jsonShapeProblem(body);
  if (tooComplex) throw invalid(tooComplex);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw invalid(`manifest is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('manifest must be a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion === 1 || SCHEMA1_TYPES.has(String(m.mediaType))) throw invalid(SCHEMA1_MESSAGE);

  const bodyType = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  let mediaType: string;
  if (handlers.has(ct)) {
    if (bodyType !== undefined && bodyType !== ct) {
      throw invalid(`manifest mediaType '${bodyType}' does not match Content-Type '${ct}'`);
    }
    mediaType = ct;
  } else if (GENERIC_CONTENT_TYPES.has(ct)) {
    if (bodyType !== undefined) mediaType = bodyType;
    else if ('manifests' in m) mediaType = MediaTypes.ociIndex;
    else if ('config' in m) mediaType = MediaTypes.ociManifest;
    else throw invalid('cannot tell the manifest type: set Content-Type or the mediaType field');
  } else {
    throw invalid(`unsupported manifest media type '${ct}'`, { supported: MANIFEST_MEDIA_TYPES });
  }
  const handler = handlers.get(mediaType);
  if (!handler) throw invalid(`unsupported manifest media type '${mediaType}'`, { supported: MANIFEST_MEDIA_TYPES });
  return handler.parse(m);
}
