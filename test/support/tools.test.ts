import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { CommandError, ensureTool, freePort, run } from './tools.js';

test('ensureTool returns the absolute path of an installed tool', async () => {
  const sh = await ensureTool('sh');
  assert.match(sh, /^\/.*\/sh$/);
});

test('ensureTool throws, naming tool and package, when installation fails', async () => {
  // Exercises the real apt path (apt-get update + a failing install): a couple of seconds.
  await assert.rejects(ensureTool('berth-no-such-tool', 'berth-no-such-package'), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, /berth-no-such-tool/);
    assert.match(e.message, /berth-no-such-package/);
    return true;
  });
});

test('run returns stdout and stderr and feeds input', async () => {
  const r = await run('sh', ['-c', 'cat; echo err >&2'], { input: 'hello' });
  assert.equal(r.stdout, 'hello');
  assert.equal(r.stderr, 'err\n');
  const env = await run('sh', ['-c', 'printf %s "$X"; pwd'], { env: { ...process.env, X: 'x1' }, cwd: '/' });
  assert.equal(env.stdout, 'x1/\n');
});

test('run rejects with command line, exit code and stderr', async () => {
  await assert.rejects(run('sh', ['-c', 'echo boom >&2; exit 3', 'arg with space']), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.exitCode, 3);
    assert.match(e.message, /sh -c 'echo boom >&2; exit 3' 'arg with space'/);
    assert.match(e.message, /exited with code 3/);
    assert.match(e.message, /boom/);
    return true;
  });
  await assert.rejects(run('/nonexistent/berth-tool', []), /failed to start/);
  await assert.rejects(run('sleep', ['10'], { timeoutMs: 100 }), /timed out after 100 ms/);
});

test('freePort returns a bindable port', async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});
