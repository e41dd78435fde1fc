/** `berth <command>`: serve (default), garbage-collect, du. */
import './threadpool.js';
import { ConfigError } from '../config/index.js';
import { diskUsage, garbageCollect } from './gc.js';
import { serve } from './serve.js';

const USAGE = `usage:
  berth serve [config.yml]
      Starts the registry. With no file (and no REGISTRY_CONFIGURATION_PATH) it
      listens on :5000 and keeps data under ./data. REGISTRY_* variables override
      configuration keys (e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5001).
  berth garbage-collect [--dry-run|-d] [--delete-untagged|-m] [--grace 1h] [config.yml]
      Removes blobs no manifest references (mark and sweep), with a summary.
  berth du [--json] [config.yml]
      Storage used per repository, in total, and reclaimable.`;

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'garbage-collect':
    case 'gc':
      process.exitCode = await garbageCollect(rest);
      return;
    case 'du':
      process.exitCode = await diskUsage(rest);
      return;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      // distribution accepts `registry <config.yml>` too.
      if (command.endsWith('.yml') || command.endsWith('.yaml')) return serve([command, ...rest]);
      console.error(`berth: unknown command "${command}"\n\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`berth: configuration error: ${err.message}`);
  else console.error(`berth: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
