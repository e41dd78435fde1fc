/**
 * The vocabulary of the one access decision: who asks (a Principal), what
 * they ask to do (an Action on a repository), and the facts about that
 * repository the decision needs. The decision itself (policy.ts) is a pure
 * function of these; loading the facts is the caller's job.
 */

/** Registry actions, as the Docker token specification names them in scopes. */
export type Action = 'pull' | 'push' | 'delete';

/** What an account, team, collaborator or robot may do on a repository, each including the ones before it. */
export type Permission = 'none' | 'read' | 'write' | 'admin';

/** Scopes of a personal access token: they cap what the token's owner may do through it. */
export type TokenScope = 'read' | 'write' | 'delete';

/**
 * Who is asking, once authenticated. `anonymous` has no credentials;
 * `admin` is an administrator account (everything); `user` and `robot` are
 * accounts of the Hub; `htpasswd` is a user of distribution's htpasswd auth
 * (accounts off), who may do everything as registry:2 allows; `granted` is
 * the bearer of a token whose access list is all it may do (an external
 * token server's, or Berth's own JWT).
 */
export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; id: number; name: string; admin: boolean; /** set when a personal access token was used */ token?: { id: number; scopes: TokenScope[] } }
  | { kind: 'robot'; id: number; name: string; organization: string }
  | { kind: 'htpasswd'; name: string }
  | { kind: 'granted'; subject: string; access: GrantedAccess[] };

/** One entry of a token's `access` claim (Docker token specification). */
export interface GrantedAccess {
  type: string;
  name: string;
  actions: string[];
}

/** What is known about one repository for a decision, loaded for one principal. */
export interface RepositoryFacts {
  name: string;
  /** Whether the repository exists (a missing one is decided by its namespace alone). */
  exists: boolean;
  visibility: 'public' | 'private';
  /**
   * The principal's own permission on the repository, from ownership of
   * its namespace, organization teams, collaborators or robot permissions;
   * for a repository that does not exist yet, what it would have.
   */
  permission: Permission;
}
