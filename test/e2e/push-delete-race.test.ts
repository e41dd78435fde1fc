/**
 * The race test without garbage collection: concurrent pushes of images
 * sharing layers (with mounts and indexes) and deletes by tag and by digest,
 * on SQLite and on PostgreSQL, one process and two. No 5xx, no incomplete
 * image, no acknowledged push lost.
 */
import { raceCases } from '../support/race-load.js';

raceCases('pushes race with deletes', { collect: false, durationMs: Number(process.env.BERTH_RACE_MS ?? 20_000) });
