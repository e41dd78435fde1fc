import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { native } from './index.js';

describe('native writeHashed', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-native-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('writes every buffer at the position and feeds them to the hash, with or without a flush to disk', async () => {
    const file = path.join(dir, 'upload');
    const fd = openSync(file, 'w+');
    try {
      const state = native().sha256Create();
      const parts = [Buffer.from('hello, '), Buffer.alloc(70_000, 7), Buffer.from('world')];
      await native().writeHashed(fd, parts.slice(0, 2), 0, state);
      await native().writeHashed(fd, parts.slice(2), 7 + 70_000, state, true);
      const all = Buffer.concat(parts);
      assert.deepEqual(readFileSync(file), all);
      assert.equal(native().sha256Digest(state), createHash('sha256').update(all).digest('hex'));
    } finally {
      closeSync(fd);
    }
  });

  it('says which call failed: the write, or the flush after a write that succeeded', async () => {
    const readOnly = openSync(path.join(dir, 'upload'), 'r');
    try {
      await assert.rejects(native().writeHashed(readOnly, [Buffer.from('x')], 0, null, true), { code: 'EBADF', syscall: 'pwritev' });
    } finally {
      closeSync(readOnly);
    }
    // /dev/null takes the bytes but cannot be synchronized (EINVAL).
    const devNull = openSync('/dev/null', 'r+');
    try {
      const state = native().sha256Create();
      await assert.rejects(native().writeHashed(devNull, [Buffer.from('abc')], 0, state, true), { code: 'EINVAL', syscall: 'fdatasync' });
      assert.equal(native().sha256Digest(state), createHash('sha256').update('abc').digest('hex'), 'the bytes were hashed and written before the flush');
      await native().writeHashed(devNull, [Buffer.from('abc')], 0, null, false);
    } finally {
      closeSync(devNull);
    }
  });

  it('with a commit: links the file into place only when its digest is the one expected', async () => {
    const blobs = path.join(dir, 'blobs');
    mkdirSync(blobs);
    const write = async (name: string, bytes: Buffer, expected: string, to = path.join(blobs, name)) => {
      const from = path.join(dir, `upload-${name}`);
      const fd = openSync(from, 'w+');
      try {
        const state = native().sha256Create();
        const outcome = await native().writeHashed(fd, [bytes], 0, state, true, { digest: expected, from, to, dir: path.dirname(to) });
        return { outcome, from, to, digest: native().sha256Digest(state) };
      } finally {
        closeSync(fd);
      }
    };
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const bytes = Buffer.from('the blob');

    const linked = await write('a', bytes, sha(bytes));
    assert.equal(linked.outcome, 'linked');
    assert.deepEqual(readFileSync(linked.to), bytes);
    assert.equal(statSync(linked.to).ino, statSync(linked.from).ino, 'a hard link, not a copy');
    assert.equal(linked.digest, sha(bytes), 'the state stays usable');

    // Another digest: written and flushed, but nothing linked.
    const wrong = await write('b', bytes, sha(Buffer.from('something else')));
    assert.equal(wrong.outcome, 'mismatch');
    assert.equal(existsSync(wrong.to), false);
    assert.deepEqual(readFileSync(wrong.from), bytes);

    // Already in place (the same bytes, as their digest names them): linked.
    assert.equal((await write('c', bytes, sha(bytes), linked.to)).outcome, 'linked');
    // A directory that is not there: the link's error code, for the caller to commit another way.
    const missing = await write('d', bytes, sha(bytes), path.join(dir, 'gone', 'd'));
    assert.equal(missing.outcome, 'ENOENT');
    // One the filesystem refuses (a directory cannot be hard-linked): its code too.
    const fd = openSync(path.join(dir, 'upload-e'), 'w+');
    try {
      const state = native().sha256Create();
      const refused = await native().writeHashed(fd, [bytes], 0, state, true, { digest: sha(bytes), from: blobs, to: path.join(blobs, 'e'), dir: blobs });
      assert.equal(refused, 'EPERM');
    } finally {
      closeSync(fd);
    }
  });

  it('refuses bad arguments with a TypeError', () => {
    assert.throws(() => native().writeHashed(1, [], 0, null), TypeError);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], -1, null), TypeError);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, null, 'yes' as unknown as boolean), /sync must be a boolean/);
    const commit = { digest: 'a'.repeat(64), from: '/nonexistent/a', to: '/nonexistent/b', dir: '/nonexistent' };
    const state = native().sha256Create();
    // A commit needs a state to compare and a flush before it.
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, null as never, true, commit), /commit must be/);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, state, false as true, commit), /commit must be/);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, state, true, { ...commit, digest: 'A'.repeat(64) }), /commit must be/);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, state, true, { ...commit, digest: 'a'.repeat(63) }), /commit must be/);
    assert.throws(() => native().writeHashed(1, [Buffer.from('x')], 0, state, true, { ...commit, dir: 7 as unknown as string }), /commit must be/);
  });
});

describe('native sendFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-sendfile-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A connected pair on loopback: `server` is the accepted end (a non-blocking socket of node's, as the HTTP server's are). */
  async function pair(): Promise<{ server: net.Socket; client: net.Socket; close(): void }> {
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const server = await accepted;
    listener.close();
    // A peer's reset is an expected outcome here, not an uncaught error.
    server.on('error', () => {});
    client.on('error', () => {});
    return {
      server,
      client,
      close() {
        server.destroy();
        client.destroy();
      },
    };
  }
  const fdOf = (s: net.Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;

  for (const copy of [false, true]) {
    const how = copy ? 'copying' : 'with sendfile';
    it(`${how}: sends the header, then a range of the file, whatever the socket buffer holds`, async () => {
      const file = path.join(dir, `blob-${how}`);
      const data = Buffer.alloc(9 * 1024 * 1024 + 3);
      for (let i = 0; i + 4 <= data.length; i += 4096) data.writeUInt32BE(i, i);
      writeFileSync(file, data);
      const fd = openSync(file, 'r');
      const { server, client, close } = await pair();
      try {
        const received: Buffer[] = [];
        let bytes = 0;
        const header = Buffer.from('HEAD\r\n');
        const want = header.length + data.length - 100;
        // A reader that stops for a while: the socket fills, the pool gives up waiting and the event loop takes over.
        client.pause();
        setTimeout(() => client.resume(), 30);
        const done = new Promise<void>((resolve) =>
          client.on('data', (c: Buffer) => {
            received.push(c);
            bytes += c.length;
            if (bytes >= want) resolve();
          }),
        );
        const job = native().sendFile(fdOf(server), header, fd, 100, data.length - 100, copy);
        closeSync(fd); // the job holds its own descriptor
        assert.equal(await job.done, want);
        await done;
        assert.ok(Buffer.concat(received).equals(Buffer.concat([header, data.subarray(100)])));
      } finally {
        close();
      }
    });

    it(`${how}: ends a job waiting on a client that does not read when cancelled, and fails on a peer that has gone`, async () => {
      const file = path.join(dir, `big-${how}`);
      writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 1));
      const fd = openSync(file, 'r');
      try {
        const a = await pair();
        a.client.pause(); // reads nothing: the job fills the buffers, then waits
        const job = native().sendFile(fdOf(a.server), null, fd, 0, 64 * 1024 * 1024, copy);
        await new Promise((r) => setTimeout(r, 100));
        native().sendFileCancel(job.job);
        await assert.rejects(job.done, (err: NodeJS.ErrnoException & { sent: number }) => err.code === 'ECANCELED' && err.sent > 0 && err.sent < 64 * 1024 * 1024);
        native().sendFileCancel(job.job); // a second cancel is harmless
        a.close();

        const b = await pair();
        // Our own descriptor of the connection: node closes its own when it sees the reset.
        const duplicate = native().dupSocket(fdOf(b.server));
        b.client.resetAndDestroy();
        await new Promise((r) => setTimeout(r, 50));
        const gone = native().sendFile(duplicate, Buffer.from('x'), fd, 0, 64 * 1024 * 1024, copy);
        await assert.rejects(gone.done, (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET' || err.code === 'EPIPE');
        closeSync(duplicate);
        b.close();
      } finally {
        closeSync(fd);
      }
    });

    it(`${how}: fails with EIO when the file ends before the length asked for`, async () => {
      const file = path.join(dir, `short-${how}`);
      writeFileSync(file, Buffer.alloc(1000, 7));
      const fd = openSync(file, 'r');
      const { server, client, close } = await pair();
      try {
        const job = native().sendFile(fdOf(server), null, fd, 0, 2000, copy);
        await assert.rejects(job.done, (err: NodeJS.ErrnoException & { sent: number }) => err.code === 'EIO' && err.syscall === (copy ? 'pread' : 'sendfile') && err.sent === 1000);
        const received: Buffer[] = [];
        client.on('data', (c: Buffer) => received.push(c));
        server.end();
        await new Promise((resolve) => client.once('end', resolve));
        assert.ok(Buffer.concat(received).equals(Buffer.alloc(1000, 7)), 'the bytes the file has went out');
      } finally {
        closeSync(fd);
        close();
      }
    });
  }

  it('refuses bad arguments with a TypeError', () => {
    assert.throws(() => native().sendFile(-1, null, 0, 0, 1, false), TypeError);
    assert.throws(() => native().sendFile(1, 'x' as unknown as Uint8Array, 0, 0, 1, false), TypeError);
    assert.throws(() => native().sendFile(1, null, 0, 0, 1, 'yes' as unknown as boolean), TypeError);
    assert.throws(() => native().sendFileCancel({} as never), TypeError);
  });
});
