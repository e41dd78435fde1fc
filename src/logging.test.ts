import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { parseConfig } from './config/index.js';
import { createLogger, toText } from './logging.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  let buf = '';
  const stream = new Writable({
    write(chunk, _e, cb) {
      buf += String(chunk);
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      cb();
    },
  });
  return { stream, lines };
}

it('writes JSON lines with configured fields by default', async () => {
  const { config } = parseConfig('log:\n  fields:\n    environment: test\n');
  const { stream, lines } = capture();
  createLogger(config, stream).info({ reqId: 'r1' }, 'hello');
  await new Promise((r) => setImmediate(r));
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(entry.msg, 'hello');
  assert.equal(entry.reqId, 'r1');
  assert.equal(entry.environment, 'test');
  assert.equal(entry.level, 'info', 'levels are names, not pino numbers');
});

it('names every level as logrus does (warn is "warning"), children included', async () => {
  const { config } = parseConfig('log:\n  level: debug\n');
  const { stream, lines } = capture();
  const log = createLogger(config, stream);
  log.debug('d');
  log.info('i');
  log.warn('w');
  log.child({ worker: 1 }).error('e');
  log.fatal('f');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { level: unknown }).level),
    ['debug', 'info', 'warning', 'error', 'fatal'],
  );
});

it('writes logrus-style text with log.formatter: text, and honours the level', async () => {
  const { config } = parseConfig('log:\n  formatter: text\n  level: warn\n');
  const { stream, lines } = capture();
  const log = createLogger(config, stream);
  log.info('not shown');
  log.warn({ path: '/v2/', n: 3 }, 'something odd');
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^time=\S+ level=warning msg="something odd" service=berth path=\/v2\/ n=3$/);
  assert.equal(toText('not json'), 'not json');
});
