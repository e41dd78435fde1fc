/**
 * Berth with accounts, started as a user starts it: a config.yml with
 * `auth: accounts`, the first administrator made with `berth user add NAME
 * --admin` (the password on standard input), then `berth serve config.yml`
 * as a real process. Accounts, organizations and tokens are made with the
 * CLI; what it has no command for (teams, robots, visibility) through the
 * Hub's services on the same database, as the JSON API will.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHub, type Hub } from '../../src/hub/index.js';
import { MetadataStore } from '../../src/metadata/store.js';
import { CLI_ENTRY, spawnBerth, type BerthProcess } from './berth.js';
import { freePort, run } from './tools.js';

export interface AccountsBerth {
  url: string;
  /** 127.0.0.1:<port> */
  host: string;
  dir: string;
  config: string;
  process: BerthProcess;
  /** The Hub on the server's database (the test's own connection). */
  hub: Hub;
  store: MetadataStore;
  admin: { user: string; password: string };
  /** Runs `berth ARGS --config <config>` with `input` on standard input; its stdout. */
  cli(args: string[], input?: string): Promise<string>;
  addUser(name: string, password: string): Promise<void>;
  close(): Promise<void>;
}

/** `accounts`: auth.accounts settings (registration: open, …); none is `auth: accounts`, the defaults. */
export async function startAccountsBerth(extraConfig = '', accounts?: Record<string, string>): Promise<AccountsBerth> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-accounts-'));
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    ['version: 0.1', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, '  delete:', '    enabled: true', 'http:', `  addr: 127.0.0.1:${port}`, ...accountsConfig(accounts), extraConfig, ''].join('\n'),
  );
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))) as Record<string, string>;
  const cli = async (args: string[], input?: string) => {
    const r = await run(process.execPath, [CLI_ENTRY, ...args, '--config', config], { env, ...(input !== undefined ? { input } : {}) });
    return r.stdout;
  };
  const admin = { user: 'chief', password: `chief-${randomBytes(6).toString('hex')}` };
  await cli(['user', 'add', admin.user, '--admin'], `${admin.password}\n`);
  const proc = await spawnBerth(port, { ...env, REGISTRY_HTTP_ADDR: `127.0.0.1:${port}` }, ['serve', config]);
  // A running child keeps the test file's process alive: if the rest of the
  // set-up fails, stop it, or the whole run waits for ever.
  const store = await MetadataStore.open({ sqlitePath: path.join(dir, 'data', 'berth.db') }).catch(async (e: unknown) => {
    await proc.stop('SIGTERM');
    throw e;
  });
  const hub = createHub(store, { defaultVisibility: 'private' });
  return {
    url: proc.url,
    host: proc.host,
    dir,
    config,
    process: proc,
    hub,
    store,
    admin,
    cli,
    addUser: async (name, password) => {
      await cli(['user', 'add', name], `${password}\n`);
    },
    async close() {
      await store.close();
      await proc.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accountsConfig(accounts: Record<string, string> | undefined): string[] {
  if (!accounts) return ['auth: accounts'];
  return ['auth:', '  accounts:', ...Object.entries(accounts).map(([k, v]) => `    ${k}: ${v}`)];
}

export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Pushes a small OCI image (config, one layer, manifest under `tag`) with `fetchFn`; returns the digests, throwing on any refusal. */
export async function pushSmallImage(fetchFn: typeof fetch, base: string, repo: string, tag: string): Promise<{ manifest: string; layer: string; config: string }> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layerBytes = randomBytes(64);
  for (const data of [configBytes, layerBytes]) {
    const start = await fetchFn(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`upload start ${repo}: ${start.status} ${await start.text()}`);
    const location = new URL(start.headers.get('location')!, base);
    location.searchParams.set('digest', sha256(data));
    const put = await fetchFn(location.toString(), { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: data });
    if (put.status !== 201) throw new Error(`blob put ${repo}: ${put.status} ${await put.text()}`);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(configBytes), size: configBytes.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layerBytes), size: layerBytes.byteLength }],
    }),
  );
  const res = await fetchFn(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  if (res.status !== 201) throw new Error(`manifest put ${repo}: ${res.status} ${await res.text()}`);
  return { manifest: sha256(manifest), layer: sha256(layerBytes), config: sha256(configBytes) };
}
