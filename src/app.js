/**
 * The composition root: turns a Config into stores, the registry domain and
 * an HTTP server. The CLI and the tests both start Berth through here.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { parseAddr } from './config/index.js';
import { createRequestHandler, listen } from './http/server.js';
import { MetadataStore } from './metadata/index.js';
import { Registry } from './registry/index.js';
import { FilesystemBlobStore, InMemoryBlobStore } from './storage/index.js';
export function createLogger(config, destination) {
    const opts = { level: config.log.level, base: { service: 'berth', ...config.log.fields }, timestamp: pino.stdTimeFunctions.isoTime };
    return destination ? pino(opts, destination) : pino(opts);
}
export async function createApp(config, log = createLogger(config)) {
    let store;
    let sqlitePath = ':memory:';
    if (config.storage.driver === 'inmemory') {
        store = new InMemoryBlobStore();
    }
    else {
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
export async function startServer(config, log) {
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
