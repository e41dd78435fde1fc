/**
 * A repository's images in the JSON API (issue 17, for the web UI's tag
 * page): one manifest with what a person wants to see of it (its config's
 * platform, command and labels, its layers with their `created_by`
 * history lines, the platforms of an index, its referrers), and deleting a
 * tag. Both go through the one access decision first (namedRepository):
 * reading needs `pull`, deleting a tag `delete`, as on /v2/.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { namedRepository, noContent, operation, respond, type Services } from './common.js';
import { ApiError, notFound } from './errors.js';
import type { Operation } from './types.js';
import { isRegistryError, type Registry } from '../../../registry/index.js';

/** What the API needs of the registry: reads of stored manifests and blobs, referrers, and tag deletes. */
export interface ImageSource {
  /** A manifest by tag or digest; null when there is none. */
  manifest(repository: string, reference: string): Promise<{ digest: string; mediaType: string; size: number; body: Buffer } | null>;
  /** A blob of the repository, at most `maxBytes` (null when missing or larger). */
  blob(repository: string, digest: string, maxBytes: number): Promise<Buffer | null>;
  /** The descriptors of the manifests that refer to `digest` (OCI referrers), at most a page. */
  referrers(repository: string, digest: string): Promise<Record<string, unknown>[]>;
  /** Deletes a tag and reports it (activity, notifications); false when there was none. Throws ApiError UNSUPPORTED when deletes are off. */
  deleteTag(repository: string, tag: string, actor: string | null): Promise<boolean>;
}

/** Image configs are small JSON; a larger one is shown without its details. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const Descriptor = z.object({
  mediaType: z.string(),
  digest: z.string(),
  size: z.number().int(),
  artifactType: z.string().optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z.object({ os: z.string(), architecture: z.string(), variant: z.string().optional() }).optional(),
});

export const ManifestDetailSchema = z.object({
  digest: z.string(),
  mediaType: z.string(),
  size: z.number().int(),
  kind: z.enum(['image', 'index', 'artifact']).describe('an index lists platforms (manifests); an artifact has an artifactType or a config that is no image config'),
  artifactType: z.string().nullable(),
  manifest: z.record(z.string(), z.unknown()).describe('the manifest as stored'),
  manifests: z.array(Descriptor).describe("an index's manifests (its platforms); empty otherwise"),
  layers: z.array(Descriptor),
  config: z
    .object({
      digest: z.string(),
      size: z.number().int(),
      os: z.string().nullable(),
      architecture: z.string().nullable(),
      variant: z.string().nullable(),
      created: z.string().nullable(),
      author: z.string().nullable(),
      user: z.string().nullable(),
      workingDir: z.string().nullable(),
      entrypoint: z.array(z.string()).nullable(),
      cmd: z.array(z.string()).nullable(),
      env: z.array(z.string()),
      exposedPorts: z.array(z.string()),
      labels: z.record(z.string(), z.string()),
    })
    .nullable()
    .describe("an image's config summarised; null for an index, an artifact or a config that cannot be read"),
  history: z.array(z.object({ created: z.string().nullable(), created_by: z.string().nullable(), comment: z.string().nullable(), empty_layer: z.boolean() })),
  referrers: z.array(Descriptor).describe('signatures, SBOMs and other artifacts whose subject is this manifest'),
});

const IMAGE_CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null);
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function descriptors(v: unknown): z.infer<typeof Descriptor>[] {
  if (!Array.isArray(v)) return [];
  return v.flatMap((d) => {
    const parsed = Descriptor.safeParse(d);
    return parsed.success ? [parsed.data] : [];
  });
}

function images(s: Services): ImageSource {
  if (!s.images) throw new ApiError('UNSUPPORTED', 'images are not served by this API');
  return s.images;
}

function summariseConfig(digest: string, size: number, raw: Buffer | null) {
  let c: Record<string, unknown> = {};
  if (raw) {
    try {
      c = obj(JSON.parse(raw.toString('utf8')));
    } catch {
      c = {};
    }
  }
  const cfg = obj(c.config);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(cfg.Labels))) if (typeof v === 'string') labels[k] = v;
  const history = Array.isArray(c.history)
    ? c.history.map((h) => {
        const e = obj(h);
        return { created: str(e.created), created_by: str(e.created_by), comment: str(e.comment), empty_layer: e.empty_layer === true };
      })
    : [];
  return {
    config: {
      digest,
      size,
      os: str(c.os),
      architecture: str(c.architecture),
      variant: str(c.variant),
      created: str(c.created),
      author: str(c.author),
      user: str(cfg.User) || null,
      workingDir: str(cfg.WorkingDir) || null,
      entrypoint: strings(cfg.Entrypoint),
      cmd: strings(cfg.Cmd),
      env: strings(cfg.Env) ?? [],
      exposedPorts: Object.keys(obj(cfg.ExposedPorts)),
      labels,
    },
    history,
  };
}

export const IMAGE_OPERATIONS: readonly Operation<Services>[] = [
  operation(
    {
      id: 'getRepositoryManifest',
      method: 'GET',
      path: '/berth/v1/repositories/{name}/-/manifests/{reference}',
      summary: "A manifest by tag or digest, described: its config's platform, command, environment and labels, its layers and history, an index's platforms, and its referrers",
      tag: 'repositories',
      auth: 'optional',
      params: { name: 'repository', reference: 'reference' },
      response: { status: 200, description: 'the manifest', schema: ManifestDetailSchema },
      errors: [404],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'pull');
      const reference = input.params.reference!;
      const source = images(s);
      const stored = await source.manifest(name, reference);
      if (!stored) throw notFound(`manifest ${reference} in ${name}`);
      let manifest: Record<string, unknown>;
      try {
        manifest = obj(JSON.parse(stored.body.toString('utf8')));
      } catch {
        manifest = {};
      }
      const manifests = descriptors(manifest.manifests);
      const layers = descriptors(manifest.layers);
      const configDesc = Descriptor.safeParse(manifest.config);
      const artifactType = str(manifest.artifactType);
      const isIndex = Array.isArray(manifest.manifests);
      const isImage = !isIndex && configDesc.success && IMAGE_CONFIG_TYPES.has(configDesc.data.mediaType) && artifactType === null;
      let config = null;
      let history: ReturnType<typeof summariseConfig>['history'] = [];
      if (isImage && configDesc.success) {
        const raw = await source.blob(name, configDesc.data.digest, MAX_CONFIG_BYTES);
        ({ config, history } = summariseConfig(configDesc.data.digest, configDesc.data.size, raw));
      }
      const referrers = descriptors(await source.referrers(name, stored.digest));
      return respond(200, {
        digest: stored.digest,
        mediaType: stored.mediaType,
        size: stored.size,
        kind: isIndex ? 'index' : isImage ? 'image' : 'artifact',
        artifactType: artifactType ?? (!isIndex && !isImage && configDesc.success ? configDesc.data.mediaType : null),
        manifest,
        manifests,
        layers,
        config,
        history,
        referrers,
      });
    },
  ),
  operation(
    {
      id: 'deleteRepositoryTag',
      method: 'DELETE',
      path: '/berth/v1/repositories/{name}/-/tags/{tag}',
      summary: 'Delete a tag (delete on the repository, as DELETE /v2/NAME/manifests/TAG needs); the manifest stays while other tags or digests refer to it',
      tag: 'repositories',
      auth: 'required',
      params: { name: 'repository', tag: 'tag' },
      response: { status: 204, description: 'deleted' },
      errors: [403, 404, 405],
    },
    async (s, input) => {
      const name = await namedRepository(s, input, 'delete');
      const tag = input.params.tag!;
      if (!(await images(s).deleteTag(name, tag, input.actor.name))) throw notFound(`tag ${tag} in ${name}`);
      return noContent();
    },
  ),
];

/** The registry's reads and tag deletes as an ImageSource (what the edge wires in). */
export function registryImages(registry: Registry): ImageSource {
  const missing = (err: unknown) => isRegistryError(err) && err.status === 404;
  return {
    async manifest(repository, reference) {
      try {
        return await registry.getManifest(repository, reference);
      } catch (err) {
        if (missing(err)) return null;
        throw err;
      }
    },
    async blob(repository, digest, maxBytes) {
      let size: number;
      try {
        size = (await registry.statBlob(repository, digest)).size;
      } catch (err) {
        if (missing(err)) return null;
        throw err;
      }
      if (size > maxBytes) return null;
      const reader = await registry.openBlob(repository, digest);
      const parts: Buffer[] = [];
      // The reader may refill a chunk once write resolves: copy it.
      await reader.pump(async (chunk) => void parts.push(Buffer.from(chunk)));
      return Buffer.concat(parts);
    },
    async referrers(repository, digest) {
      const { index } = await registry.referrers(repository, digest);
      return (index.manifests as Record<string, unknown>[] | undefined) ?? [];
    },
    async deleteTag(repository, tag, actor) {
      try {
        await registry.deleteManifest(repository, tag);
        // As DELETE /v2/NAME/manifests/TAG reports it: the activity, webhooks and notification endpoints hear of it.
        await registry.events.emit([{ id: randomUUID(), timestamp: new Date().toISOString(), action: 'delete', target: { repository, tag }, actor: actor === null ? {} : { name: actor } }]);
        return true;
      } catch (err) {
        if (missing(err)) return false;
        // Deletes disabled (storage.delete.enabled) or a read-only registry.
        if (isRegistryError(err) && err.code === 'UNSUPPORTED') throw new ApiError('UNSUPPORTED', err.message);
        throw err;
      }
    },
  };
}
