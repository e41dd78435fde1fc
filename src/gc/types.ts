/** What a collection is asked to do and what it reports: shared by the collector and its dry run. */

export interface CollectOptions {
  /** Blobs and manifests younger than this are kept (ms). */
  graceMs: number;
  deleteUntagged: boolean;
  dryRun: boolean;
  /** Called as work proceeds (for progress bars). */
  progress?: (p: Progress) => void;
  /** A dry run: called with every item it would delete, as found (the summary's plan lists only the first ones). */
  onPlanned?: (item: PlannedItem) => void;
}

export interface Progress {
  phase: string;
  done: number;
  total?: number;
}

export interface CollectSummary {
  dryRun: boolean;
  graceMs: number;
  deleteUntagged: boolean;
  /** Blobs a manifest references (kept). */
  blobsMarked: number;
  /** Blobs found unreferenced and past the grace period. */
  blobsEligible: number;
  blobsDeleted: number;
  bytesReclaimed: number;
  manifestsDeleted: number;
  linksPruned: number;
  orphanFilesDeleted: number;
  startedAt: string;
  durationMs: number;
  /** A dry run only: the manifests, blobs and orphaned files the real run would delete (the first PLAN_LIMIT of each). */
  plan?: CollectionPlan;
}

/** What a dry run found, listed: the first PLAN_LIMIT of each kind (the summary's counts cover all). */
export interface CollectionPlan {
  manifests: { repository: string; digest: string; size: number }[];
  blobs: { digest: string; size: number }[];
  /** Files in the blob store the database has no record of. */
  orphans: { digest: string; size: number }[];
  /** True when a list was cut at PLAN_LIMIT. */
  truncated: boolean;
}

/** One thing the real run would delete. */
export type PlannedItem =
  | { kind: 'manifest'; repository: string; digest: string; size: number }
  | { kind: 'blob'; digest: string; size: number }
  | { kind: 'orphan'; digest: string; size: number };
