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
  org: `usage: berth org <subcommand> [options]

Organizations (see docs/hub.md).

subcommands:
  add NAME --owner USER    create an organization; USER becomes the only
                           member of its owners team
  member add ORG USER      add a member
  member del ORG USER      remove a member from the organization and its
                           teams (refused for its last owner)

options:
      --owner USER    the first owner (an existing user)
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  team: `usage: berth team <subcommand> [options]

Teams of an organization, and what they may do.

subcommands:
  add ORG TEAM                          create a team
  del ORG TEAM                          delete a team (not owners)
  member add ORG TEAM USER              add a user (who joins the organization too)
  member del ORG TEAM USER              remove a user from the team
  grant ORG TEAM REPOSITORY PERMISSION  give the team read, write or admin on
                                        REPOSITORY (ORG/…, or '*' for all of
                                        them); none removes the grant

options:
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  robot: `usage: berth robot <subcommand> [options]

Robots: an organization's machine accounts, logging in as ORG+NAME.

subcommands:
  add ORG NAME [--grant REPOSITORY:PERMISSION]... [--expires DURATION]
               create a robot; its secret is printed once, alone on
               standard output
  del ORG NAME [--purge]   revoke a robot (disabled at once, kept listed);
                           --purge deletes it
  list ORG                 the organization's robots, tab-separated

options:
      --grant REPO:PERM     a permission (read, write, admin) on a repository
                            of ORG; repeat for more
      --expires DURATION    e.g. 30d, 12h (default: never)
      --description TEXT    what the robot is for
      --purge               delete rather than disable
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  repo: `usage: berth repo visibility NAME public|private [options]

Sets a repository's visibility: public (everyone may pull) or private (only
those with read). A one-component NAME is library/NAME.

options:
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  collaborator: `usage: berth collaborator <subcommand> [options]

Direct collaborators on a user's repository (organizations grant through teams).

subcommands:
  add REPOSITORY USER PERMISSION   give USER read, write or admin on REPOSITORY
  del REPOSITORY USER              remove USER's permission

options:
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  invite: `usage: berth invite add [--email E] [--expires DURATION] [options]

Creates an invitation code for registration by invitation
(auth.accounts.registration: invite); the code is printed once, alone on
standard output.

options:
      --email E           whom it is for (recorded)
      --expires DURATION  how long it is valid (default 7d)
      --config FILE   configuration file (default: REGISTRY_CONFIGURATION_PATH, or none)
  -h, --help          show this help`,
  audit: `usage: berth audit [--since WHEN] [--actor NAME] [--action ACTION] [-n N] [options]

Prints the audit log, newest first, tab-separated: time, actor (- for the
command line), action, target, client, request id, detail.

options:
      --since WHEN      only entries since then: a duration back from now
                        (24h, 7d), an ISO 8601 date, or milliseconds
      --actor NAME      only this actor's entries
      --action ACTION   only this action (e.g. login.failed)
  -n N                  at most N entries
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
  backfill: `usage: berth backfill [config.yml]

Records what repository pages show of images pushed before Berth kept it
(sizes, platforms, descriptions from labels and annotations): run once after
upgrading, beside a running server or not. Reads each such image's config
blob once; images first, then indexes; prints progress and a summary.

options:
  -h, --help   show this help`,
} as const;

export type CommandName = keyof typeof COMMAND_USAGE;

export const USAGE = `usage: berth <command> [options] [config.yml]

commands:
  serve             start the registry (the default; \`berth config.yml\` works too)
  garbage-collect   remove blobs no manifest references (alias: gc)
  du                storage used per repository
  backfill          record image details of pushes from before an upgrade
  user              manage user accounts (add, passwd, del, list, import)
  org               organizations and their members (add, member add|del)
  team              teams, their members and permissions
  robot             an organization's robots (add, del, list)
  repo              repository visibility
  collaborator      collaborators on a user's repository
  invite            invitation codes
  audit             print the audit log
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
