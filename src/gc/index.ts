export { countUploads, purgeUploads, schedulePurging } from './purge.js';
export type { PurgeResult } from './purge.js';
export { GarbageCollector, scheduleCollection } from './collector.js';
export type { CollectOptions, CollectSummary, CollectionRun, Progress } from './collector.js';
export type { CollectionPlan, PlannedItem } from './dry-run.js';
