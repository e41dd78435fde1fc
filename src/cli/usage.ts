/**
 * The CLI's usage texts, and the error a command throws for arguments it
 * does not understand (main.ts prints the command's usage and exits 2, as
 * cobra does for distribution's `registry`).
 */

export const COMMAND_USAGE = {
  serve: `usage: berth serve [config.yml]

Starts the registry. With no file (and no REGISTRY_CONFIGURATION_PATH) it
listens on :5000 and keeps data under ./data. REGISTRY_* variables override
configuration keys (e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5001).

options:
  -h, --help   show this help`,
  'garbage-collect': `usage: berth garbage-collect [options] [config.yml]   (alias: gc)

Removes blobs no manifest references (mark and sweep) and prints a summary.
Safe beside a running server; --grace spares uploads in progress.

options:
  -d, --dry-run           report what would be removed, remove nothing
  -m, --delete-untagged   also remove manifests no tag points to
      --grace DURATION    spare blobs younger than this (e.g. 1h, 30m)
  -h, --help              show this help`,
  du: `usage: berth du [--json] [config.yml]

Storage used per repository, in total, and what garbage collection would reclaim.

options:
      --json   print the figures as JSON
  -h, --help   show this help`,
} as const;

export type CommandName = keyof typeof COMMAND_USAGE;

export const USAGE = `usage: berth <command> [options] [config.yml]

commands:
  serve             start the registry (the default; \`berth config.yml\` works too)
  garbage-collect   remove blobs no manifest references (alias: gc)
  du                storage used per repository
  version           print the version
  help [command]    show this help, or a command's

options:
  -h, --help        show this help (after a command: that command's help)
  -v, --version     print the version`;

/** Arguments a command does not accept: exit 2 with the command's usage. */
export class UsageError extends Error {
  constructor(
    readonly command: CommandName | undefined,
    message: string,
  ) {
    super(message);
  }
}
