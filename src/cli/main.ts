/** `berth <command>`: serve (default), garbage-collect, du, backfill, user, org, team, robot, repo, collaborator, invite, audit, token, version, help. */
import './threadpool.js';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/index.js';
import { COMMAND_USAGE, USAGE, UsageError, type CommandName } from './usage.js';

const ALIASES: Record<string, CommandName> = { serve: 'serve', 'garbage-collect': 'garbage-collect', gc: 'garbage-collect', du: 'du', backfill: 'backfill', user: 'user', org: 'org', token: 'token', team: 'team', robot: 'robot', repo: 'repo', collaborator: 'collaborator', invite: 'invite', audit: 'audit' };

/** `berth 0.1.0 (node v20.…)`, from package.json. */
function version(): string {
  let v = 'unknown';
  try {
    // dist/src/cli/main.js → the repository's package.json.
    v = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? v;
  } catch {
    // a copy without its package.json still runs
  }
  return `berth ${v} (node ${process.version})`;
}

/** serve takes one configuration file and no options. */
function serveArgs(args: string[]): string[] {
  const option = args.find((a) => a.startsWith('-') && a !== '-');
  if (option) throw new UsageError('serve', `unknown option ${option}`);
  if (args.length > 1) throw new UsageError('serve', `expected at most one configuration file, got ${args.length} arguments`);
  return args;
}

async function main(argv: string[]): Promise<void> {
  const [first = 'serve', ...rest] = argv;
  // distribution's `registry <config.yml>` serves too.
  const command = first.endsWith('.yml') || first.endsWith('.yaml') ? 'serve' : ALIASES[first];
  const args = command === 'serve' && first !== 'serve' ? argv : rest;
  if (command) {
    if (args.includes('--help') || args.includes('-h')) {
      console.log(COMMAND_USAGE[command]);
      return;
    }
    // Each command loads only its own modules: serve starts its worker
    // threads before it loads the app, so they load theirs alongside.
    switch (command) {
      case 'serve':
        return (await import('./serve.js')).serve(serveArgs(args));
      case 'garbage-collect':
        process.exitCode = await (await import('./gc.js')).garbageCollect(args);
        return;
      case 'du':
        process.exitCode = await (await import('./gc.js')).diskUsage(args);
        return;
      case 'backfill':
        process.exitCode = await (await import('./backfill.js')).backfill(args);
        return;
      default: {
        const hub = await import('./hub.js');
        const run = {
          user: hub.userCommand,
          org: hub.orgCommand,
          token: hub.tokenCommand,
          team: hub.teamCommand,
          robot: hub.robotCommand,
          repo: hub.repoCommand,
          collaborator: hub.collaboratorCommand,
          invite: hub.inviteCommand,
          audit: hub.auditCommand,
        }[command];
        process.exitCode = await run(args);
        return;
      }
    }
  }
  switch (first) {
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0] === undefined ? undefined : ALIASES[rest[0]];
      if (rest[0] !== undefined && !topic) throw new UsageError(undefined, `unknown command "${rest[0]}"`);
      console.log(topic ? COMMAND_USAGE[topic] : USAGE);
      return;
    }
    case 'version':
    case '--version':
    // registry's root command takes -v as well.
    case '-v':
      console.log(version());
      return;
    default:
      throw new UsageError(undefined, first.startsWith('-') ? `unknown option ${first}` : `unknown command "${first}"`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`berth${err.command ? ` ${err.command}` : ''}: ${err.message}\n\n${err.command ? COMMAND_USAGE[err.command] : USAGE}`);
    process.exit(2);
  }
  if (err instanceof ConfigError) console.error(`berth: configuration error: ${err.message}`);
  else console.error(`berth: ${(err as Error)?.message ?? String(err)}`);
  process.exit(1);
});
