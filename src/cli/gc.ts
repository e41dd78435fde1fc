/**
 * `berth garbage-collect [--dry-run|-d] [--delete-untagged|-m] [--grace D] [config.yml]`
 * and `berth du [config.yml]`: the offline commands, run against the same
 * configuration as the server. distribution's garbage-collect wants the
 * registry stopped or read-only; Berth's is safe beside a running server
 * (use --grace so uploads in progress are spared).
 */
import { createApp, createLogger } from '../app.js';
import { loadConfig, parseDuration } from '../config/index.js';
import { UsageError } from './usage.js';
import type { PlannedItem } from '../gc/index.js';
import { describeFileError } from '../config/datadir.js';

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function progressBar(stream: NodeJS.WriteStream) {
  let last = 0;
  return (p: { phase: string; done: number; total?: number }) => {
    const now = Date.now();
    if (now - last < 100 && p.done !== p.total) return;
    last = now;
    const width = 30;
    const line =
      p.total !== undefined && p.total > 0
        ? `${p.phase.padEnd(9)} [${'#'.repeat(Math.round((p.done / p.total) * width)).padEnd(width, '.')}] ${p.done}/${p.total}`
        : `${p.phase.padEnd(9)} ${p.done}`;
    stream.write(`\r${line}\x1b[K`);
  };
}

export async function garbageCollect(args: string[]): Promise<number> {
  let dryRun = false;
  let deleteUntagged = false;
  let grace = 0;
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--dry-run' || a === '-d') dryRun = true;
    else if (a === '--delete-untagged' || a === '-m') deleteUntagged = true;
    else if (a === '--grace') grace = parseDuration(args[++i] ?? '', '--grace');
    else if (a.startsWith('--grace=')) grace = parseDuration(a.slice('--grace='.length), '--grace');
    else if (a.startsWith('-')) throw new UsageError('garbage-collect', `unknown option ${a}`);
    else file = a;
  }
  const { config } = await loadConfig(file);
  const app = await createApp(config, createLogger({ ...config, log: { ...config.log, level: 'warn' } }));
  try {
    const tty = process.stderr.isTTY;
    // A dry run names what the real run would delete, one line each, as it finds them (its summary lists only the first ones).
    const onPlanned = (item: PlannedItem) => {
      if (tty) process.stderr.write('\r\x1b[K');
      if (item.kind === 'manifest') console.log(`manifest eligible for deletion: ${item.repository}@${item.digest}`);
      else if (item.kind === 'blob') console.log(`blob eligible for deletion: ${item.digest}`);
      else console.log(`orphaned file eligible for deletion: ${item.digest}`);
    };
    const summary = await app.gc.collect({ graceMs: grace, deleteUntagged, dryRun, progress: tty ? progressBar(process.stderr) : undefined, onPlanned }).catch(async (err: unknown) => {
      // A blob that cannot be removed stops the run: say which file, and that a later run picks it up again.
      const what = await describeFileError(err);
      throw what ? new Error(`garbage-collect: ${what}; the run stopped there, and the next run takes it up again`, { cause: err }) : err;
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (deleteUntagged) console.log(`${summary.manifestsDeleted} untagged manifests ${dryRun ? 'eligible for deletion' : 'deleted'}`);
    console.log(`${summary.blobsMarked} blobs marked, ${summary.blobsEligible} blobs eligible for deletion`);
    console.log(
      dryRun
        ? `dry run: nothing deleted; ${summary.blobsEligible} blobs and ${summary.orphanFilesDeleted} orphaned files would be removed, ${humanBytes(summary.bytesReclaimed)} reclaimed (${summary.bytesReclaimed} bytes)`
        : `${summary.blobsDeleted} blobs deleted, ${summary.orphanFilesDeleted} orphaned files removed, ${humanBytes(summary.bytesReclaimed)} reclaimed (${summary.bytesReclaimed} bytes)`,
    );
    return 0;
  } finally {
    await app.close();
  }
}

export async function diskUsage(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const unknown = args.find((a) => a.startsWith('-') && a !== '--json');
  if (unknown) throw new UsageError('du', `unknown option ${unknown}`);
  const files = args.filter((a) => !a.startsWith('-'));
  if (files.length > 1) throw new UsageError('du', `expected at most one configuration file, got ${files.join(' ')}`);
  const file = files[0];
  const { config } = await loadConfig(file);
  const app = await createApp(config, createLogger({ ...config, log: { ...config.log, level: 'warn' } }));
  try {
    const usage = await app.meta.collection.storageUsage();
    if (json) {
      console.log(JSON.stringify(usage, null, 2));
      return 0;
    }
    const width = Math.max(10, ...usage.repositories.map((r) => r.name.length));
    for (const r of usage.repositories) console.log(`${humanBytes(r.bytes).padStart(10)}  ${r.name.padEnd(width)}  ${r.blobs} blobs`);
    console.log(`${humanBytes(usage.totalBytes).padStart(10)}  total (${usage.totalBlobs} blobs, shared blobs counted once)`);
    console.log(`${humanBytes(usage.reclaimableBytes).padStart(10)}  reclaimable by garbage collection (${usage.reclaimableBlobs} blobs)`);
    return 0;
  } finally {
    await app.close();
  }
}
