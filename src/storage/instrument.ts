/**
 * Times a blob store's calls for distribution's storage metric
 * (`registry_storage_action_seconds{driver,action}`): each promise-returning
 * method of one store instance is wrapped in place, so every holder of the
 * store (the registry, uploads, the collector) is measured alike. The
 * action names are distribution's storage-driver operations that mean the
 * same thing: a push's append is its `Writer`, a commit its `Move`.
 */
import type { BlobStore } from './driver.js';

/** Receives one timed call: its action, how long it took, and whether it failed. */
export type StorageObserver = (action: string, seconds: number, failed: boolean) => void;

const ACTIONS = {
  stat: 'Stat',
  exists: 'Stat',
  uploadSize: 'Stat',
  get: 'Reader',
  open: 'Reader',
  openFile: 'Reader',
  readUpload: 'Reader',
  delete: 'Delete',
  deleteUpload: 'Delete',
  createUpload: 'Writer',
  writeBlob: 'Writer',
  appendUpload: 'Writer',
  appendAndCommit: 'Writer',
  commitUpload: 'Move',
  redirectURL: 'RedirectURL',
} as const satisfies Partial<Record<keyof BlobStore, string>>;

export function instrumentBlobStore(store: BlobStore, observe: StorageObserver): void {
  const target = store as unknown as Record<string, unknown>;
  for (const [method, action] of Object.entries(ACTIONS)) {
    const original = target[method];
    if (typeof original !== 'function') continue; // optional methods the driver lacks
    const call = original as (...args: unknown[]) => Promise<unknown>;
    target[method] = function timed(this: unknown, ...args: unknown[]): Promise<unknown> {
      const started = process.hrtime.bigint();
      const done = (failed: boolean) => observe(action, Number(process.hrtime.bigint() - started) / 1e9, failed);
      let result: Promise<unknown>;
      try {
        result = call.apply(this, args);
      } catch (err) {
        done(true); // a driver that refuses its arguments before returning a promise
        throw err;
      }
      return result.then(
        (value) => {
          done(false);
          return value;
        },
        (err: unknown) => {
          done(true);
          throw err;
        },
      );
    };
  }
}
