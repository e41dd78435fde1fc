/**
 * A repository's page: its data in Docker Hub's shapes (`v2/repositories/NS/NAME/`
 * and its `/tags`), its description and README (set by whoever holds admin,
 * or taken from the image), and the official flag (administrators).
 *
 * What the page shows of an image is learnt once, when its manifest is
 * pushed (`ImageDetails.manifestStored`, called by the registry): sizes from
 * the descriptors, platforms from the config blob (read then, never at page
 * time) or from an index's descriptors, the description from the
 * `org.opencontainers.image.description` annotation or label, and a README
 * from an artifact attached by the referrers API.
 */
import type { Logger } from 'pino';
import { decide, type AccessMode, type PolicyOptions } from '../access/policy.js';
import type { Principal } from '../access/types.js';
import { DiscoveryQueries, type PlatformRow, type RepositoryInfo, type TagSort } from '../metadata/discovery.js';
import type { BlobStore } from '../storage/index.js';
import type { ManifestObserver, StoredManifestEvent } from '../registry/registry.js';
import { parseDigest } from '../registry/reference.js';
import type { ActivityService } from './activity.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import type { FactsLoader } from './facts.js';
import { MAX_DESCRIPTION_CHARS, MAX_README_BYTES, renderReadme } from './readme.js';

/** Artifact types of a README attached to an image (with the referrers API): Berth's own, and plain Markdown. */
export const README_ARTIFACT_TYPES = new Set(['application/vnd.berth.readme', 'text/markdown']);
export const DESCRIPTION_ANNOTATION = 'org.opencontainers.image.description';
/** A config blob larger than this is not read for its platform (a real one is a few KiB; history can make it larger). */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Docker Hub's repository fields (v2/repositories/NS/NAME/), plus Berth's. */
export interface RepositoryPage {
  name: string;
  namespace: string;
  repository_type: 'image';
  status: 1;
  status_description: 'active';
  description: string;
  is_private: boolean;
  is_official: boolean;
  star_count: number;
  pull_count: number;
  last_updated: string | null;
  last_pushed: string | null;
  last_pulled: string | null;
  date_registered: string;
  full_description: string;
  /** Berth: the README as safe HTML. */
  full_description_html: string;
  visibility: 'public' | 'private';
  /** Berth: the full repository name. */
  full_name: string;
  /** Berth: whether the caller starred it (false for anonymous). */
  has_starred: boolean;
}

/** Docker Hub's tag fields (v2/repositories/NS/NAME/tags), plus the media type. */
export interface TagPage {
  name: string;
  digest: string;
  media_type: string;
  full_size: number | null;
  last_updated: string;
  last_pulled: string | null;
  tag_status: 'active';
  images: { architecture: string; os: string; variant: string | null; digest: string; size: number; status: 'active'; last_pulled: string | null }[];
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class RepositoryPages {
  private readonly queries: DiscoveryQueries;
  constructor(
    private readonly hub: HubContext,
    private readonly facts: FactsLoader,
    private readonly mode: AccessMode,
    private readonly policy: PolicyOptions,
    private readonly activity: ActivityService,
  ) {
    this.queries = new DiscoveryQueries(hub.store);
  }

  /** Whether `principal` may do `action` on `name` (an existing repository or not). */
  async may(principal: Principal, name: string, action: 'pull' | 'delete'): Promise<boolean> {
    return decide(this.mode, principal, action, await this.facts.facts(principal, name), this.policy).allowed;
  }

  /** The repository if it exists and the caller may read it; otherwise NOT_FOUND (the same for both). */
  private async readable(principal: Principal, name: string): Promise<RepositoryInfo> {
    const info = await this.queries.info(name);
    if (!info || !(await this.may(principal, name, 'pull'))) throw new HubError('NOT_FOUND', `no repository ${name}`);
    return info;
  }

  /** The repository, if the caller holds admin on it (a reader who is not admin is refused, anyone else told it does not exist). */
  private async administered(principal: Principal, name: string): Promise<RepositoryInfo> {
    const info = await this.readable(principal, name);
    if (!(await this.may(principal, name, 'delete'))) throw new HubError('FORBIDDEN', `changing ${name} needs admin on it`);
    return info;
  }

  async repository(principal: Principal, name: string): Promise<RepositoryPage> {
    const info = await this.readable(principal, name);
    const starred = principal.kind === 'user' ? await this.queries.hasStarred(principal.id, name) : false;
    return {
      name: info.shortName,
      namespace: info.namespace,
      repository_type: 'image',
      status: 1,
      status_description: 'active',
      description: info.description,
      is_private: info.visibility === 'private',
      is_official: info.official,
      star_count: info.starCount,
      pull_count: info.pullCount,
      last_updated: iso(info.lastPushedAt ?? info.updatedAt),
      last_pushed: iso(info.lastPushedAt),
      last_pulled: iso(info.lastPulledAt),
      date_registered: new Date(info.createdAt).toISOString(),
      full_description: info.readme,
      full_description_html: info.readme ? renderReadme(info.readme) : '',
      visibility: info.visibility,
      full_name: info.name,
      has_starred: starred,
    };
  }

  /** `filter`: only tags whose name contains it. */
  async tags(principal: Principal, name: string, page: { sort?: TagSort; page?: number; pageSize?: number; filter?: string } = {}): Promise<{ count: number; page: number; page_size: number; results: TagPage[] }> {
    await this.readable(principal, name);
    const pageSize = Math.min(Math.max(Math.floor(page.pageSize ?? 25), 1), 100);
    const p = Math.max(Math.floor(page.page ?? 1), 1);
    const sort = page.sort ?? 'updated';
    if (!['name', 'updated', 'pulled'].includes(sort)) throw new HubError('INVALID', `sort must be name, updated or pulled, got ${JSON.stringify(sort)}`);
    const { total, tags } = await this.queries.tags(name, { sort, limit: pageSize, offset: (p - 1) * pageSize, filter: page.filter });
    return {
      count: total,
      page: p,
      page_size: pageSize,
      results: tags.map((t) => ({
        name: t.name,
        digest: t.digest,
        media_type: t.mediaType,
        full_size: t.size,
        last_updated: new Date(t.pushedAt).toISOString(),
        last_pulled: iso(t.lastPulledAt),
        tag_status: 'active',
        images: t.platforms.map((x: PlatformRow) => ({
          architecture: x.architecture,
          os: x.os,
          variant: x.variant,
          digest: x.digest,
          size: x.size,
          status: 'active',
          last_pulled: iso(x.lastPulledAt),
        })),
      })),
    };
  }

  async setDescription(principal: Principal, name: string, description: string, actor: Actor): Promise<void> {
    if (typeof description !== 'string') throw new HubError('INVALID', 'description must be a string');
    if ([...description].length > MAX_DESCRIPTION_CHARS) throw new HubError('INVALID', `description must be at most ${MAX_DESCRIPTION_CHARS} characters`);
    const info = await this.administered(principal, name);
    if (description === '') await this.queries.clearText(name, 'description');
    else await this.queries.setText(name, 'description', description, 'manual');
    await this.activity.record([{ repository: name, namespace: info.namespace, actor: actor.name, actorId: actor.id, action: 'description', tag: null, digest: null }]);
  }

  /** Sets the README (Markdown); an empty one clears it, so a README pushed with the image shows again. */
  async setReadme(principal: Principal, name: string, readme: string, actor: Actor): Promise<void> {
    if (typeof readme !== 'string') throw new HubError('INVALID', 'README must be a string');
    if (Buffer.byteLength(readme) > MAX_README_BYTES) throw new HubError('INVALID', `README must be at most ${MAX_README_BYTES} bytes`);
    const info = await this.administered(principal, name);
    if (readme === '') await this.queries.clearText(name, 'readme');
    else await this.queries.setText(name, 'readme', readme, 'manual');
    await this.activity.record([{ repository: name, namespace: info.namespace, actor: actor.name, actorId: actor.id, action: 'readme', tag: null, digest: null }]);
  }

  /** Administrators mark repositories official (`library/…` is official from the start). */
  async setOfficial(principal: Principal, name: string, official: boolean, actor: Actor): Promise<void> {
    const allowed = (principal.kind === 'user' && principal.admin) || (this.mode === 'open' && (principal.kind === 'anonymous' || principal.kind === 'htpasswd'));
    if (!allowed) throw new HubError('FORBIDDEN', 'only administrators mark repositories official');
    const info = await this.queries.info(name);
    if (!info || !(await this.queries.setOfficial(name, official))) throw new HubError('NOT_FOUND', `no repository ${name}`);
    await this.activity.record([{ repository: name, namespace: info.namespace, actor: actor.name, actorId: actor.id, action: 'official', tag: null, digest: null, detail: { official } }]);
  }
}

/** Reads a blob of at most `limit` bytes, or null when it is larger or absent. */
async function readSmallBlob(blobs: BlobStore, digest: string, size: number, limit: number): Promise<Buffer | null> {
  if (size > limit) return null;
  const stream = await blobs.get(digest);
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      stream.destroy();
      return null;
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/**
 * The registry's observer of stored manifests: records what the pages and
 * the search need, reading the config blob (or a README artifact's layer)
 * once, now. Never throws: a failure is logged and the push stands.
 */
export class ImageDetails implements ManifestObserver {
  private readonly queries: DiscoveryQueries;
  constructor(
    private readonly hub: HubContext,
    private readonly blobs: BlobStore,
    private readonly log?: Pick<Logger, 'warn'>,
  ) {
    this.queries = new DiscoveryQueries(hub.store);
  }

  /**
   * A small blob of `repository`'s, or null. Only a blob linked in the
   * repository is read: the store is shared by every repository, and a
   * manifest may name any digest (an external layer is not checked to be
   * in the repository), so a README artifact naming another repository's
   * blob would otherwise publish it on this repository's page.
   */
  private async readOwnBlob(repository: string, digest: string, size: number, limit: number): Promise<Buffer | null> {
    try {
      parseDigest(digest);
    } catch {
      return null;
    }
    if (!(await this.hub.store.registry.linkedBlob(repository, digest))) return null;
    return readSmallBlob(this.blobs, digest, size, limit);
  }

  async manifestStored(repository: string, m: StoredManifestEvent): Promise<void> {
    try {
      await this.record(repository, m);
    } catch (err) {
      this.log?.warn({ err, repository, digest: m.digest }, 'could not record the details of a pushed manifest');
    }
  }

  /**
   * Records the details of manifests pushed before migration 0012 (a
   * one-time job after an upgrade: reads each image's config blob once),
   * images first, then indexes. `manifest` reads a manifest's bytes (the
   * registry's getManifest). Returns how many were recorded.
   */
  async backfill(manifest: (repository: string, digest: string) => Promise<Buffer>, onProgress?: (done: number) => void): Promise<number> {
    let done = 0;
    for (const indexes of [false, true]) {
      let after = 0;
      for (;;) {
        const page = await this.queries.manifestsWithoutDetails(indexes, after, 100);
        for (const m of page) {
          try {
            await this.record(m.repository, { digest: m.digest, mediaType: m.mediaType, body: await manifest(m.repository, m.digest), tags: [] }, false);
            done++;
          } catch (err) {
            this.log?.warn({ err, repository: m.repository, digest: m.digest }, 'could not record the details of a manifest');
          }
        }
        onProgress?.(done);
        if (page.length < 100) break;
        after = page[page.length - 1]!.id;
      }
    }
    return done;
  }

  private async record(repository: string, m: StoredManifestEvent, pushed = true): Promise<void> {
    const doc = JSON.parse(m.body.toString('utf8')) as Json;
    const annotations = isObject(doc.annotations) ? doc.annotations : {};
    let description = str(annotations[DESCRIPTION_ANNOTATION]);
    const platforms: { os: string; architecture: string; variant: string | null; digest: string; size: number }[] = [];
    let totalSize = 0;

    if (Array.isArray(doc.manifests)) {
      const children = doc.manifests.filter(isObject);
      const sizes = await this.queries.manifestSizes(repository, children.map((c) => String(c.digest)));
      for (const c of children) {
        const p = isObject(c.platform) ? c.platform : {};
        const os = str(p.os);
        const architecture = str(p.architecture);
        // buildx's attestation manifests say unknown/unknown: not a platform anyone pulls.
        if (!os || !architecture || os === 'unknown') continue;
        const size = sizes.get(String(c.digest)) ?? 0;
        platforms.push({ os, architecture, variant: str(p.variant), digest: String(c.digest), size });
        totalSize += size;
      }
    } else if (isObject(doc.config)) {
      const config = doc.config;
      const layers = Array.isArray(doc.layers) ? doc.layers.filter(isObject) : [];
      totalSize = Number(config.size ?? 0) + layers.reduce((n, l) => n + Number(l.size ?? 0), 0);
      const artifactType = str(doc.artifactType) ?? str(config.mediaType);
      if (artifactType && README_ARTIFACT_TYPES.has(artifactType) && isObject(doc.subject)) {
        await this.readmeFrom(repository, layers);
      } else if (str(config.mediaType)?.includes('image.config') || config.mediaType === 'application/vnd.docker.container.image.v1+json') {
        const body = await this.readOwnBlob(repository, String(config.digest), Number(config.size ?? 0), MAX_CONFIG_BYTES).catch(() => null);
        const image = body ? (JSON.parse(body.toString('utf8')) as Json) : null;
        if (image && isObject(image)) {
          const os = str(image.os);
          const architecture = str(image.architecture);
          if (os && architecture) platforms.push({ os, architecture, variant: str(image.variant), digest: m.digest, size: totalSize });
          const labels = isObject(image.config) && isObject(image.config.Labels) ? image.config.Labels : {};
          description ??= str(labels[DESCRIPTION_ANNOTATION]);
        }
      }
    }
    await this.queries.recordManifest(repository, m.digest, { totalSize, platforms }, pushed);
    if (description && pushed) await this.queries.setText(repository, 'description', [...description].slice(0, MAX_DESCRIPTION_CHARS).join(''), 'image');
  }

  /** A README artifact: its Markdown layer (or its only layer) becomes the README, unless one was set by hand. */
  private async readmeFrom(repository: string, layers: Json[]): Promise<void> {
    const layer = layers.find((l) => str(l.mediaType)?.startsWith('text/markdown')) ?? (layers.length === 1 ? layers[0] : undefined);
    if (!layer) return;
    const body = await this.readOwnBlob(repository, String(layer.digest), Number(layer.size ?? 0), MAX_README_BYTES);
    if (!body) return;
    const text = body.toString('utf8');
    if (text.length) await this.queries.setText(repository, 'readme', text, 'image');
  }
}
