/**
 * The composition root: turns a Config into stores, the registry domain and
 * an HTTP server. The CLI and the tests both start Berth through here.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { parseAddr, type Config } from './config/index.js';
import { createRequestHandler, listen, type RunningServer } from './http/server.js';
import { MetadataStore } from './metadata/index.js';
import { Registry } from './registry/index.js';
import { FilesystemBlobStore, InMemoryBlobStore, type BlobStore } from './storage/index.js';

export interface App {
  registry: Registry;
  meta: MetadataStore;
  store: BlobStore;
  log: Logger;
  close(): Promise<void>;
}

export function createLogger(config: Config, destination?: NodeJS.WritableStream): Logger {
  const opts = { level: config.log.level, base: { service: 'berth', ...config.log.fields }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}

export async function createApp(config: Config, log: Logger = createLogger(config)): Promise<App> {
  let store: BlobStore;
  let sqlitePath = ':memory:';
  if (config.storage.driver === 'inmemory') {
    store = new InMemoryBlobStore();
  } else {
    const root = config.storage.filesystem.rootdirectory;
    await mkdir(root, { recursive: true });
    store = new FilesystemBlobStore({ rootDirectory: root });
    sqlitePath = path.join(root, 'berth.db');
  }
  const meta = await MetadataStore.open({ url: config.berth.database.url, sqlitePath });
  const registry = new Registry(meta, store, {
    deleteEnabled: config.storage.delete.enabled,
    readOnly: config.storage.maintenance.readonly.enabled,
  });
  return {
    registry,
    meta,
    store,
    log,
    async close() {
      await meta.close();
      await store.close?.();
    },
  };
}

export interface Server {
  app: App;
  http: RunningServer;
  /** http://127.0.0.1:<port> (or the configured host). */
  url: string;
  close(drainMs?: number): Promise<void>;
}

export async function startServer(config: Config, log?: Logger): Promise<Server> {
  const app = await createApp(config, log);
  const handler = createRequestHandler(app.registry, app.log, {
    prefix: config.http.prefix,
    host: config.http.host,
    relativeUrls: config.http.relativeurls,
    headers: config.http.headers,
    accessLog: !config.log.accesslog.disabled,
  });
  const { host, port } = parseAddr(config.http.addr);
  const running = await listen(handler, host, port);
  const shownHost = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    app,
    http: running,
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${running.port}`,
    async close(drainMs) {
      await running.close(drainMs);
      await app.close();
    },
  };
}
