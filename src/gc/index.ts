export { purgeUploads, schedulePurging } from './purge.js';
export type { PurgeResult } from './purge.js';
