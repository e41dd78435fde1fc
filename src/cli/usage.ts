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
  user: `usage: berth user <subcommand> [options]

Manages the Hub's user accounts (auth.accounts; see docs/hub.md) in the
configured metadata database. Passwords are never arguments: they are read
from standard input when it is not a terminal (its first line), and asked
for without echo when it is.

subcommands:
  add NAME [--admin] [--email E]   create a user (--admin: an administrator)
  passwd NAME                      set a user's password (ends their sessions)
  del NAME                         delete an account; refused while it owns
                                   repositories or is an organization's last owner
  list                             list users and organizations
  import htpasswd FILE             create users from an htpasswd file, keeping
                                   their bcrypt hashes

options:
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  org: `usage: berth org add NAME --owner USER [options]

Creates an organization; USER becomes the only member of its owners team.

options:
      --owner USER    the first owner (an existing user)
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  token: `usage: berth token add USER NAME --scope SCOPES [--expires DURATION] [options]

Creates a personal access token for USER, usable as the password of
\`docker login\`. Its secret is printed once, alone on standard output.

options:
      --scope SCOPES      read, write, delete (comma-separated): read pulls;
                          write pulls and pushes; delete also deletes
      --expires DURATION  e.g. 30d, 12h, 90m (default: never)
      --config FILE       configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help              show this help`,
} as const;

export type CommandName = keyof typeof COMMAND_USAGE;

export const USAGE = `usage: berth <command> [options] [config.yml]

commands:
  serve             start the registry (the default; \`berth config.yml\` works too)
  garbage-collect   remove blobs no manifest references (alias: gc)
  du                storage used per repository
  user              manage user accounts (add, passwd, del, list, import)
  org               create organizations
  token             create personal access tokens
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
