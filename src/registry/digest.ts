import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { DigestAlgorithm } from './reference.js';

export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export async function digestStream(stream: Readable, algorithm: DigestAlgorithm): Promise<{ digest: string; size: number }> {
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { digest: `${algorithm}:${hash.digest('hex')}`, size };
}
