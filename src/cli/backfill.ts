/**
 * `berth backfill [config.yml]`: records the image details repository pages
 * show (compressed sizes, platforms, descriptions from labels and
 * annotations) for manifests pushed before Berth recorded them at push time
 * (migration 0012). A one-time job after an upgrade; safe beside a running
 * server (each manifest is recorded in its own write, and one recorded since
 * is not picked again).
 */
import { createApp, createLogger } from '../app.js';
import { loadConfig } from '../config/index.js';
import { UsageError } from './usage.js';

export async function backfill(args: string[]): Promise<number> {
  let file: string | undefined;
  for (const a of args) {
    if (a.startsWith('-')) throw new UsageError('backfill', `unknown option ${a}`);
    if (file !== undefined) throw new UsageError('backfill', `expected at most one configuration file, got ${args.length} arguments`);
    file = a;
  }
  const { config } = await loadConfig(file);
  const app = await createApp(config, createLogger({ ...config, log: { ...config.log, level: 'warn' } }));
  try {
    const tty = process.stderr.isTTY;
    let shown = 0;
    const progress = (done: number) => {
      if (tty) process.stderr.write(`\rrecorded ${done}\x1b[K`);
      else if (done > shown) console.error(`recorded ${done}`);
      shown = done;
    };
    const recorded = await app.discovery.images.backfill(async (repository, digest) => (await app.registry.getManifest(repository, digest)).body, progress);
    if (tty) process.stderr.write('\r\x1b[K');
    console.log(recorded === 0 ? 'nothing to record: every manifest has its details' : `${recorded} manifests recorded (sizes, platforms, descriptions)`);
    return 0;
  } finally {
    await app.close();
  }
}
