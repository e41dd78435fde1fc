/** Table types for Kysely. Timestamps are milliseconds since the epoch. */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
  /** Set while a delete removes the repository batch by batch (refreshed each batch, database clock): writes into it are refused. */
  deleting_since: number | null;
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

export interface Database {
  gc_runs: GcRunsTable;
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
