/** Table types for Kysely. Timestamps are milliseconds since the epoch. */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
  /** Set while a delete removes the repository batch by batch (refreshed each batch, database clock): writes into it are refused. */
  deleting_since: number | null;
  /** Who may pull: everyone, or only those with read (the Hub). Rows from before accounts existed are 'public'. */
  visibility: Generated<'public' | 'private'>;
}

/** Every committed blob the registry knows, whatever repositories link it. */
export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
  /** Last push, link or mount of this blob: the garbage collector's grace period counts from here. */
  last_used_at: number;
  /** 'deleting' while the collector removes the bytes; such a blob is invisible. */
  state: 'live' | 'deleting';
  deleting_at: number | null;
}

/** A blob is readable in a repository only through a link. */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

export interface ManifestsTable {
  id: Generated<number>;
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject_digest: string | null;
  /** JSON text of the manifest's annotations, kept for the referrers API. */
  annotations: string | null;
  created_at: number;
}

/** What a manifest points at: blobs (config, layers) and manifests (index children, subject). */
export interface ManifestReferencesTable {
  manifest_id: number;
  repository_id: number;
  digest: string;
  kind: 'blob' | 'manifest' | 'subject';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  manifest_id: number;
  updated_at: number;
}



/** One row per event still to be delivered to one endpoint, in id order. */
export interface NotificationQueueTable {
  id: Generated<number>;
  endpoint: string;
  /** The event as JSON (one element of the envelope's `events`). */
  payload: string;
  created_at: number;
}

/** Delivery state of each notification endpoint, shared by every process. */
export interface NotificationEndpointsTable {
  endpoint: string;
  failures: number;
  next_attempt_at: number;
  last_error: string | null;
  /** Which process delivers for this endpoint now, and until when. */
  lease_owner: string | null;
  lease_until: number;
}

/** The last delete of each repository name (database clock, ms). */
export interface RepositoryDeletionsTable {
  name: string;
  deleted_at: number;
}

/** A token signing key (migration 0011_signing_keys). */
export interface SigningKeysTable {
  id: Generated<number>;
  ordinal: number;
  kid: string;
  algorithm: string;
  private_key: string | null;
  certificate: string;
  created_at: number;
  active_at: number;
  retired_at: number | null;
}

/**
 * One row per garbage collection (online, scheduled or offline): its options,
 * state and summary, so that any thread or process can report on a run
 * another one executes. The executing process refreshes updated_at while the
 * run is queued or running; a row left unrefreshed belongs to a process that died.
 */
export interface GcRunsTable {
  id: Generated<number>;
  state: 'queued' | 'running' | 'finished' | 'failed';
  dry_run: number;
  grace_ms: number;
  delete_untagged: number;
  /** Which collector (one per process thread) executes it. */
  owner: string;
  created_at: number;
  started_at: number | null;
  updated_at: number;
  finished_at: number | null;
  /** JSON: the last progress report ({phase, done, total?}). */
  progress: string | null;
  /** JSON: the summary, once finished. */
  summary: string | null;
  error: string | null;
}

// ---- the Hub (migration 0010_hub_accounts) -----------------------------------

/** Users and organizations: one namespace of names. */
export interface AccountsTable {
  id: Generated<number>;
  name: string;
  kind: 'user' | 'org';
  email: string | null;
  /** PHC-like scrypt string, or a bcrypt hash imported from htpasswd; null for organizations. */
  password_hash: string | null;
  /** 1 for an administrator (SQLite has no boolean). */
  admin: number;
  created_at: number;
  disabled_at: number | null;
}

export interface OrganizationMembersTable {
  organization_id: number;
  account_id: number;
  created_at: number;
}

export interface TeamsTable {
  id: Generated<number>;
  organization_id: number;
  name: string;
  created_at: number;
}

export interface TeamMembersTable {
  team_id: number;
  account_id: number;
}

/** A team's permission on one repository (full name) or on '*' (every repository of its organization). */
export interface TeamPermissionsTable {
  team_id: number;
  repository: string;
  permission: 'read' | 'write' | 'admin';
}

/** A direct collaborator on one repository of a user's namespace. */
export interface CollaboratorsTable {
  repository: string;
  account_id: number;
  permission: 'read' | 'write' | 'admin';
  created_at: number;
}

export interface RobotsTable {
  id: Generated<number>;
  organization_id: number;
  /** The short name: the robot logs in as ORG+NAME. */
  name: string;
  /** SHA-256 hex of the secret. */
  secret_hash: string;
  description: string;
  expires_at: number | null;
  created_at: number;
  disabled_at: number | null;
}

export interface RobotPermissionsTable {
  robot_id: number;
  repository: string;
  permission: 'read' | 'write' | 'admin';
}

/** Personal access tokens. */
export interface AccessTokensTable {
  id: Generated<number>;
  account_id: number;
  name: string;
  secret_hash: string;
  /** Comma-separated TokenScope values. */
  scopes: string;
  expires_at: number | null;
  last_used_at: number | null;
  created_at: number;
  revoked_at: number | null;
}

export interface RefreshTokensTable {
  id: Generated<number>;
  token_hash: string;
  account_id: number | null;
  access_token_id: number | null;
  robot_id: number | null;
  client_id: string;
  expires_at: number;
  created_at: number;
  revoked_at: number | null;
}

export interface InvitationsTable {
  id: Generated<number>;
  code_hash: string;
  email: string | null;
  created_by: number | null;
  expires_at: number;
  created_at: number;
  used_at: number | null;
  used_by: number | null;
}

export interface AuditLogTable {
  id: Generated<number>;
  /** Database clock, ms. */
  at: number;
  actor: string | null;
  actor_id: number | null;
  action: string;
  target: string | null;
  request_id: string | null;
  client: string | null;
  /** JSON text. */
  detail: string | null;
}

export interface LoginFailuresTable {
  key: string;
  window_start: number;
  failures: number;
}

// ---- the Hub's discovery (migration 0012_hub_discovery) ------------------------

/**
 * The Hub's data about one repository, one row per repository (made by a
 * trigger when the repository row is inserted, gone with it). The search
 * index follows this row: SQLite's FTS5 tables by triggers, PostgreSQL's
 * generated tsvector column.
 */
export interface RepositoryInfoTable {
  repository_id: number;
  name: string;
  namespace: string;
  /** The name without its namespace ('api/server' of 'acme/api/server'; the whole name when it has one component). */
  short_name: string;
  description: string;
  /** Where the description came from: nothing yet, the image (an annotation or label), or someone with admin. */
  description_source: 'none' | 'image' | 'manual';
  readme: string;
  readme_source: 'none' | 'image' | 'manual';
  official: number;
  star_count: number;
  pull_count: number;
  /** Pull counts of the current and previous 7-day windows (window number = database ms / 7 days), for "recent pulls". */
  pulls_window: number;
  pulls_current: number;
  pulls_previous: number;
  last_pulled_at: number | null;
  last_pushed_at: number | null;
  /** The last push or change of the description or README. */
  updated_at: number;
}

/** What a manifest's page needs and no blob read at page time should: its compressed size (config + layers; an index: its children's). */
export interface ManifestInfoTable {
  manifest_id: number;
  total_size: number;
}

/** The platforms of a manifest: one row for an image (from its config), one per child for an index (from its descriptors). */
export interface ManifestPlatformsTable {
  manifest_id: number;
  position: number;
  os: string;
  architecture: string;
  variant: string | null;
  /** An index child's digest and compressed size; the image's own for an image manifest. */
  digest: string;
  size: number;
}

export interface StarsTable {
  account_id: number;
  repository_id: number;
  created_at: number;
}

/** What an account follows: another account (its namespace and what it does) or a repository, by name. */
export interface FollowsTable {
  account_id: number;
  kind: 'account' | 'repository';
  target: string;
  created_at: number;
}

/** Pull counts by tag name (a GET of the manifest by that tag). */
export interface TagPullsTable {
  repository_id: number;
  name: string;
  pull_count: number;
  last_pulled_at: number;
}

/** Pull counts by manifest digest (every GET that served that manifest, by tag or digest). */
export interface ManifestPullsTable {
  repository_id: number;
  digest: string;
  pull_count: number;
  last_pulled_at: number;
}

/** What happened in a repository or namespace: no foreign keys, it outlives what it names. */
export interface ActivityTable {
  id: Generated<number>;
  /** Database clock, ms. */
  at: number;
  repository: string | null;
  namespace: string;
  actor: string | null;
  actor_id: number | null;
  action: string;
  tag: string | null;
  digest: string | null;
  /** JSON text. */
  detail: string | null;
}

/** A repository's webhook (Hub style): deliveries go through notification_queue as endpoint 'webhook:ID'. */
export interface WebhooksTable {
  id: Generated<number>;
  repository_id: number;
  name: string;
  url: string;
  /** Comma-separated actions that trigger it (today: push). */
  events: string;
  active: number;
  created_by: string | null;
  created_at: number;
}

export interface Database {
  repository_info: RepositoryInfoTable;
  manifest_info: ManifestInfoTable;
  manifest_platforms: ManifestPlatformsTable;
  stars: StarsTable;
  follows: FollowsTable;
  tag_pulls: TagPullsTable;
  manifest_pulls: ManifestPullsTable;
  activity: ActivityTable;
  webhooks: WebhooksTable;
  gc_runs: GcRunsTable;
  accounts: AccountsTable;
  organization_members: OrganizationMembersTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  team_permissions: TeamPermissionsTable;
  collaborators: CollaboratorsTable;
  robots: RobotsTable;
  robot_permissions: RobotPermissionsTable;
  access_tokens: AccessTokensTable;
  refresh_tokens: RefreshTokensTable;
  invitations: InvitationsTable;
  audit_log: AuditLogTable;
  login_failures: LoginFailuresTable;
  repositories: RepositoriesTable;
  repository_deletions: RepositoryDeletionsTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  notification_queue: NotificationQueueTable;
  notification_endpoints: NotificationEndpointsTable;
  signing_keys: SigningKeysTable;
}
