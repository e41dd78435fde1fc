// A minimal registry client on node:http keep-alive agents. Only ever talks
// to 127.0.0.1: every URL, including Location headers, is checked.
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function agent(maxSockets = 16) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

function checkLoopback(url) {
  if (url.hostname !== '127.0.0.1') throw new Error(`bench refuses to talk to ${url.host}: only 127.0.0.1`);
}

/**
 * One request. `body`: undefined, a Buffer, or { size, write(req) → Promise }
 * for streamed bodies. `sink`: 'buffer' (default) keeps the response body,
 * 'discard' only counts it.
 */
export async function request(ag, method, url, opts = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await requestOnce(ag, method, url, opts);
    } catch (err) {
      // A kept-alive socket the server closed just as we reused it: the request
      // never reached the server, so sending it again is safe (node's advice).
      // All the agent's idle sockets reach the server's idle timeout together
      // (after a long phase on the other server): the next one taken may be
      // closing too, so the retry comes after a turn of the event loop, which
      // lets the agent drop the closed ones, and more than once.
      if (!(err.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) || attempt > ag.maxFreeSockets) {
        if (attempt > 1 || err.reusedSocket) err.message += ` (attempt ${attempt}, ${err.reusedSocket ? 'a kept-alive socket' : 'a new connection'})`;
        throw err;
      }
      await new Promise((r) => setImmediate(r));
    }
  }
}

function requestOnce(ag, method, url, { headers = {}, body, sink = 'buffer' } = {}) {
  const u = url instanceof URL ? url : new URL(url);
  checkLoopback(u);
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (Buffer.isBuffer(body)) h['Content-Length'] = String(body.byteLength);
    else if (body) h['Content-Length'] = String(body.size);
    else if (method === 'PUT' || method === 'POST' || method === 'PATCH') h['Content-Length'] = '0';
    let gotResponse = false;
    const req = http.request(u, { method, agent: ag, headers: h }, (res) => {
      gotResponse = true;
      const chunks = [];
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.byteLength;
        if (sink === 'buffer') chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: sink === 'buffer' ? Buffer.concat(chunks) : undefined, bytes }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      err.reusedSocket = req.reusedSocket && !gotResponse;
      err.message = `${method} ${u.pathname}: ${err.message}`;
      reject(err);
    });
    if (Buffer.isBuffer(body)) req.end(body);
    else if (body) body.write(req).then(() => req.end(), reject);
    else req.end();
  });
}

function expect(res, status, what) {
  if (res.status !== status) {
    const text = res.body ? res.body.toString('utf8').slice(0, 500) : '';
    throw new Error(`${what}: expected ${status}, got ${res.status} ${text}`);
  }
  return res;
}

/** A body of `size` bytes made of `block` repeated (size must be a multiple of it), written with backpressure. */
export function repeatedBody(block, size) {
  return {
    size,
    async write(req) {
      for (let sent = 0; sent < size; sent += block.byteLength) {
        if (!req.write(block)) await new Promise((r) => req.once('drain', r));
      }
    },
  };
}

/** A blob of `size` bytes made of one random 1 MiB block repeated: never held in memory whole. */
export function bigBlob(size) {
  const block = randomBytes(Math.min(MiB, size));
  const hash = createHash('sha256');
  for (let i = 0; i < size / block.byteLength; i++) hash.update(block);
  return { block, size, digest: `sha256:${hash.digest('hex')}` };
}

export function sha256(buf) {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

export class Registry {
  /** `headers`: sent with every request (an Authorization header for a server with accounts on). */
  constructor(base, maxSockets = 16, headers = {}) {
    this.base = base; // "http://127.0.0.1:port"
    this.agent = agent(maxSockets);
    this.headers = headers;
    checkLoopback(new URL(base));
  }
  request(method, url, opts = {}, ag = this.agent) {
    return request(ag, method, url, { ...opts, headers: { ...this.headers, ...opts.headers } });
  }
  url(path) {
    return new URL(path, this.base);
  }
  location(res) {
    const loc = res.headers.location;
    if (!loc) throw new Error('no Location header');
    const u = new URL(loc, this.base);
    checkLoopback(u);
    return u;
  }
  async startUpload(repo) {
    const res = await this.request('POST', this.url(`/v2/${repo}/blobs/uploads/`));
    expect(res, 202, `POST upload ${repo}`);
    return this.location(res);
  }
  /** POST then PUT ?digest= with the whole body (distribution 2.8 ignores a body on POST ?digest=). */
  async pushMonolithic(repo, digest, body) {
    const loc = await this.startUpload(repo);
    loc.searchParams.set('digest', digest);
    const res = await this.request('PUT', loc, { headers: { 'Content-Type': 'application/octet-stream' }, body });
    expect(res, 201, `PUT blob ${repo}`);
  }
  /** POST, PATCH chunks of chunkSize with Content-Range, then PUT ?digest= with no body. */
  async pushChunked(repo, blob, chunkSize) {
    let loc = await this.startUpload(repo);
    for (let start = 0; start < blob.size; start += chunkSize) {
      const len = Math.min(chunkSize, blob.size - start);
      const res = await this.request('PATCH', loc, {
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${start}-${start + len - 1}` },
        body: repeatedBody(blob.block, len),
      });
      expect(res, 202, `PATCH ${repo} @${start}`);
      loc = this.location(res);
    }
    loc.searchParams.set('digest', blob.digest);
    expect(await this.request('PUT', loc), 201, `PUT finish ${repo}`);
  }
  async mount(repo, digest, from) {
    const res = await this.request('POST', this.url(`/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`));
    if (res.status === 201) return;
    throw new Error(`mount ${digest} from ${from} into ${repo}: ${res.status} ${res.body?.toString().slice(0, 300)}`);
  }
  async putManifest(repo, ref, mediaType, bytes) {
    const res = await this.request('PUT', this.url(`/v2/${repo}/manifests/${ref}`), { headers: { 'Content-Type': mediaType }, body: bytes });
    expect(res, 201, `PUT manifest ${repo}:${ref}`);
  }
  /** GET a blob, counting and discarding the bytes. */
  async pullBlob(repo, digest, ag = this.agent) {
    const res = await this.request('GET', this.url(`/v2/${repo}/blobs/${digest}`), { sink: 'discard' }, ag);
    if (res.status !== 200) throw new Error(`GET blob ${repo}: ${res.status}`);
    return res.bytes;
  }
  async rangeGet(repo, digest, start, end) {
    const res = await this.request('GET', this.url(`/v2/${repo}/blobs/${digest}`), { headers: { Range: `bytes=${start}-${end}` } });
    expect(res, 206, `GET range ${repo}`);
    return res.body;
  }
  async get(path, headers = {}) {
    return this.request('GET', this.url(path), { headers });
  }
  /** Follows Link rel="next" from `path`; returns { items, pages }. */
  async walk(path, key) {
    let next = path;
    let pages = 0;
    let items = 0;
    while (next) {
      const res = expect(await this.get(next), 200, `GET ${next}`);
      pages++;
      items += (JSON.parse(res.body.toString('utf8'))[key] ?? []).length;
      const link = res.headers.link;
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      next = m ? m[1] : undefined;
      if (next) checkLoopback(new URL(next, this.base));
    }
    return { items, pages };
  }
  close() {
    this.agent.destroy();
  }
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight. */
/**
 * GET a blob over a raw node:net connection, as an outside harness reads it:
 * no HTTP library, the body counted and dropped as it arrives, with a large
 * read buffer reused (onread) so the client allocates nothing per read.
 * Resolves to the body's length; rejects on a non-200 or a short body.
 */
const rawReadBuffer = () => Buffer.allocUnsafe(256 * 1024);
export function rawGet(url) {
  const u = url instanceof URL ? url : new URL(url);
  checkLoopback(u);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let length = -1;
    let body = 0;
    const socket = net.connect({
      host: u.hostname,
      port: Number(u.port),
      onread: {
        buffer: rawReadBuffer(),
        callback: (n, buf) => {
          if (length < 0) {
            head = Buffer.concat([head, buf.subarray(0, n)]);
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) return;
            const text = head.subarray(0, end).toString('latin1');
            const status = Number(text.split(' ')[1]);
            const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
            if (status !== 200 || !m) {
              socket.destroy();
              reject(new Error(`raw GET ${u.pathname}: status ${status}`));
              return;
            }
            length = Number(m[1]);
            body = head.length - end - 4;
          } else {
            body += n;
          }
          if (body >= length) {
            socket.destroy();
            resolve(body);
          }
        },
      },
    });
    socket.on('connect', () => socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`));
    socket.on('error', reject);
    socket.on('close', () => {
      if (length < 0 || body < length) reject(new Error(`raw GET ${u.pathname}: connection closed after ${body} of ${length} bytes`));
    });
  });
}

export async function pool(n, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** A small OCI image (config + one layer + manifest) as bytes, for seeding and the small-request load. */
export function smallImage(seed = 'berth-bench') {
  const layer = Buffer.concat([Buffer.from(seed), randomBytes(1024)]);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: {} }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.byteLength }],
    }),
  );
  return {
    layer,
    config,
    manifest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    layerDigest: sha256(layer),
    configDigest: sha256(config),
    manifestDigest: sha256(manifest),
  };
}

export async function pushSmallImage(reg, repo, img, tag) {
  await reg.pushMonolithic(repo, img.configDigest, img.config);
  await reg.pushMonolithic(repo, img.layerDigest, img.layer);
  await reg.putManifest(repo, tag, img.mediaType, img.manifest);
}
