import { createHash } from 'node:crypto';
export function digestOf(data, algorithm = 'sha256') {
    return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
export async function digestStream(stream, algorithm) {
    const hash = createHash(algorithm);
    let size = 0;
    for await (const chunk of stream) {
        hash.update(chunk);
        size += chunk.byteLength;
    }
    return { digest: `${algorithm}:${hash.digest('hex')}`, size };
}
/** Passes chunks through while feeding them to `hash` and counting them. */
export async function* hashing(source, hash, counter) {
    for await (const chunk of source) {
        hash?.update(chunk);
        counter.bytes += chunk.byteLength;
        yield chunk;
    }
}
