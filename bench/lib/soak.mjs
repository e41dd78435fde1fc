// A mixed soak: `connections` keep-alive node:net connections, each pushing
// a small image (two blobs by POST+PUT, then its manifest by tag) or pulling
// one already pushed (manifest by tag, then its layer), half and half, for
// `seconds`. Latency is recorded per request and reported per kind, with
// the push requests and the pull requests also taken together.
import { createHash, randomBytes } from 'node:crypto';
import { keepAliveConnection } from './load.mjs';

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function image(layerBytes) {
  const layer = randomBytes(layerBytes);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] }, nonce: randomBytes(8).toString('hex') }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.byteLength }],
    }),
  );
  return { layer, config, manifest, layerDigest: sha(layer) };
}

export async function runSoak({ base, connections = 64, seconds = 60, layerBytes = 4096, repos = 16 }) {
  const u = new URL(base);
  if (u.hostname !== '127.0.0.1') throw new Error('loopback only');
  const lat = {}; // kind → number[] (ms)
  const errors = {};
  const pushed = []; // { repo, tag, layerDigest }
  let seq = 0;
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  const hdr = (method, path, extra = '') => `${method} ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: berth-bench-soak\r\n${extra}`;

  const connection = async () => {
    const conn = keepAliveConnection(u);
    const timed = async (kind, bytes, expect) => {
      const started = process.hrtime.bigint();
      const r = await conn.roundTrip(bytes);
      (lat[kind] ??= []).push(Number(process.hrtime.bigint() - started) / 1e6);
      if (r.status !== expect) errors[kind] = (errors[kind] ?? 0) + 1;
      return r;
    };
    const pushBlob = async (repo, bytes) => {
      const post = await timed('blob POST', Buffer.from(hdr('POST', `/v2/${repo}/blobs/uploads/`, 'Content-Length: 0\r\n\r\n')), 202);
      const location = /\r\nlocation:\s*([^\r]*)/i.exec(post.head)?.[1];
      if (!location) throw new Error(`POST upload: ${post.status}`);
      const target = new URL(location, base);
      if (target.host !== u.host) throw new Error(`upload Location ${location} leaves ${u.host}`);
      target.searchParams.set('digest', sha(bytes));
      const head = hdr('PUT', `${target.pathname}${target.search}`, `Content-Type: application/octet-stream\r\nContent-Length: ${bytes.byteLength}\r\n\r\n`);
      await timed('blob PUT', Buffer.concat([Buffer.from(head, 'latin1'), bytes]), 201);
    };
    try {
      while (process.hrtime.bigint() < end) {
        if (pushed.length === 0 || (seq++ & 1) === 0) {
          const img = image(layerBytes);
          const repo = `soak/r${seq % repos}`;
          const tag = `t${seq}`;
          await pushBlob(repo, img.layer);
          await pushBlob(repo, img.config);
          const head = hdr('PUT', `/v2/${repo}/manifests/${tag}`, `Content-Type: ${OCI}\r\nContent-Length: ${img.manifest.byteLength}\r\n\r\n`);
          await timed('manifest PUT', Buffer.concat([Buffer.from(head, 'latin1'), img.manifest]), 201);
          pushed.push({ repo, tag, layerDigest: img.layerDigest });
        } else {
          const p = pushed[Math.floor(Math.random() * pushed.length)];
          await timed('manifest GET', Buffer.from(hdr('GET', `/v2/${p.repo}/manifests/${p.tag}`, `Accept: ${OCI}\r\n\r\n`)), 200);
          await timed('blob GET', Buffer.from(hdr('GET', `/v2/${p.repo}/blobs/${p.layerDigest}`, '\r\n')), 200);
        }
      }
    } finally {
      conn.close();
    }
  };

  await Promise.all(Array.from({ length: connections }, connection));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = (xs) => {
    const s = Float64Array.from(xs).sort();
    return { n: s.length, perSec: s.length / secs, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
  };
  const kinds = Object.fromEntries(Object.entries(lat).map(([k, v]) => [k, stats(v)]));
  const push = stats(['blob POST', 'blob PUT', 'manifest PUT'].flatMap((k) => lat[k] ?? []));
  const pull = stats(['manifest GET', 'blob GET'].flatMap((k) => lat[k] ?? []));
  return { seconds: secs, kinds, push, pull, images: pushed.length, errors };
}
