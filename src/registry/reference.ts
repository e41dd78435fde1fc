/**
 * The grammar of names, tags and digests (OCI distribution-spec "Pulling
 * manifests" and opencontainers/image-spec descriptor.md). Everything that
 * comes from a URL is checked here before it reaches a store or a path.
 */
import { RegistryError } from './errors.js';

// OCI dist-spec: <name> must match this; distribution caps it at 255 bytes.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
export const MAX_NAME_LENGTH = 255;

export type DigestAlgorithm = 'sha256' | 'sha512';
export const DIGEST_HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertName(name: string): string {
  if (!isValidName(name)) {
    throw new RegistryError('NAME_INVALID', `invalid repository name: ${JSON.stringify(name.slice(0, 300))}`, {
      name: name.slice(0, 300),
      rule: 'lower-case path components [a-z0-9] separated by ".", "_", "__" or "-", joined by "/", at most 255 characters',
    });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new RegistryError('TAG_INVALID', `invalid tag: ${JSON.stringify(tag.slice(0, 200))}`, {
      tag: tag.slice(0, 200),
      rule: '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}',
    });
  }
  return tag;
}

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: string;
}

/** Parses and validates `algorithm:hex`; only sha256 and sha512 are accepted. */
export function parseDigest(value: string): ParsedDigest {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (colon <= 0 || !DIGEST_SHAPE_RE.test(value)) {
    throw new RegistryError('DIGEST_INVALID', `invalid digest: ${JSON.stringify(value.slice(0, 200))}`, {
      digest: value.slice(0, 200),
    });
  }
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm "${algorithm.slice(0, 40)}": use sha256 or sha512`, {
      digest: value.slice(0, 200),
    });
  }
  if (hex.length !== DIGEST_HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', `invalid ${algorithm} digest: expected ${DIGEST_HEX_LENGTH[algorithm]} lower-case hex characters`, {
      digest: value.slice(0, 200),
    });
  }
  return { algorithm, hex, digest: value };
}

/** A manifest reference is a tag or a digest; anything containing ':' is judged as a digest. */
export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: string };

export function parseReference(ref: string): ManifestReference {
  if (ref.includes(':')) return { kind: 'digest', digest: parseDigest(ref).digest };
  return { kind: 'tag', tag: assertTag(ref) };
}
