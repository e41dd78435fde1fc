// The whole protocol suite again, against `berth serve` running as a real
// process (the in-process run shares its code path; this one proves the CLI,
// config loading and process lifecycle give the same answers).
process.env.BERTH_TARGET = 'process';
await import('./protocol/base.test.js');
await import('./protocol/blobs.test.js');
await import('./protocol/uploads.test.js');
await import('./protocol/manifests.test.js');
await import('./protocol/listings.test.js');
await import('./protocol/referrers.test.js');
await import('./protocol/deletes.test.js');
