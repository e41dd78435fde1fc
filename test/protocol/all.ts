/** Every protocol suite, loaded in one order: for the runs that repeat them all under another setting (BERTH_TARGET, BERTH_AUTH). */
export async function loadProtocolSuites(): Promise<void> {
  await import('./base.test.js');
  await import('./blobs.test.js');
  await import('./uploads.test.js');
  await import('./manifests.test.js');
  await import('./listings.test.js');
  await import('./referrers.test.js');
  await import('./deletes.test.js');
}
