/**
 * The composition root: turns a Config into stores, the registry domain and
 * an HTTP server. The CLI and the tests both start Berth through here.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from './logging.js';

export { createLogger } from './logging.js';
import { HtpasswdAuthenticator, HtpasswdFile, type Authenticator } from './auth/index.js';
import { createDiscovery, createHub, type Discovery, type Hub } from './hub/index.js';
import type { EdgeAuth } from './edge-auth.js';
import { parseAddr, type Config } from './config/index.js';
import { checkDataDirectory } from './config/datadir.js';
import { newInstanceId, NotificationQueue, type EventSink, type RegistryEvent } from './events/index.js';
import { countUploads, GarbageCollector, scheduleCollection, schedulePurging } from './gc/index.js';
import { createApiRoutes } from './http/api/index.js';
import { fileCheck, HealthChecks, httpCheck, tcpCheck } from './health/index.js';
import { createDebugHandler } from './http/debug.js';
import { v1Routes } from './http/v1/index.js';
import type { aggregateMetrics, Metrics } from './http/metrics.js';
import type net from 'node:net';
import { createRequestHandler, listen, serveHandedConnections, type EdgeServices, type RunningServer } from './http/server.js';
import { MetadataStore, SAFETY_NET_PAGES, WalCheckpointer, type WriteGate } from './metadata/index.js';
import { openClusterLink, type ClusterLink } from './metadata/cluster.js';
import { requireNativeParts } from './native/index.js';
import { Registry, RegistryError } from './registry/index.js';
import { FilesystemBlobStore, InMemoryBlobStore, type BlobStore } from './storage/index.js';
import type { S3BlobStore } from './storage/s3.js';
import type { AzureBlobStore } from './storage/azure.js';
import { instrumentBlobStore } from './storage/instrument.js';
import { webRoutes } from './web/serve.js';

export interface App {
  config: Config;
  registry: Registry;
  gc: GarbageCollector;
  meta: MetadataStore;
  store: BlobStore;
  log: Logger;
  /**
   * The Hub's discovery (search, pages, stars, pull counts, activity,
   * webhooks), in every mode: with accounts off it is the anonymous view of
   * a registry where everything is public. It records pushed images
   * (registry.manifestObserver) and the registry's own events.
   */
  discovery: Discovery;
  close(): Promise<void>;
}

export interface AppOptions {
  /** Shared by the serving threads of one process: one writer at a time. */
  writeGate?: WriteGate;
  /**
   * SQLite's WAL checkpoints: `here` runs them on a thread of this app's own
   * (a serving process's main thread), `elsewhere` leaves them to the thread
   * that does (the other serving threads). Unset, SQLite runs them inline,
   * in whichever connection commits (the CLI's short-lived commands).
   */
  checkpoints?: 'here' | 'elsewhere';
}

export async function createApp(config: Config, log: Logger = createLogger(config), opts: AppOptions = {}): Promise<App> {
  await requireNativeParts({ sqlite: config.berth.database.url === undefined });
  let store: BlobStore;
  let sqlitePath = ':memory:';
  if (config.storage.driver === 'inmemory') {
    store = new InMemoryBlobStore();
  } else if (config.storage.driver === 's3' || config.storage.driver === 'azure') {
    if (config.storage.driver === 's3') store = await s3Store(config);
    else {
      const azure = await azureStore(config);
      // As distribution does: the container is created when missing (and a wrong key fails here, not on the first push).
      await azure.container.createIfNotExists();
      store = azure;
    }
    // The bytes are in the bucket or container; SQLite (without PostgreSQL) stays in the local data directory.
    if (config.berth.database.url === undefined) {
      const root = config.storage.filesystem.rootdirectory;
      await checkDataDirectory(root, { databaseOnly: true });
      sqlitePath = path.join(root, 'berth.db');
    }
  } else {
    const root = config.storage.filesystem.rootdirectory;
    // A directory Berth cannot write fails here, naming the path, not on the first push.
    // Read-only, only SQLite still writes there; with PostgreSQL the directory may be read-only.
    if (!config.storage.maintenance.readonly.enabled) await checkDataDirectory(root);
    else if (config.berth.database.url === undefined) await checkDataDirectory(root, { databaseOnly: true });
    store = new FilesystemBlobStore({ rootDirectory: root });
    sqlitePath = path.join(root, 'berth.db');
  }
  const meta = await MetadataStore.open({
    url: config.berth.database.url,
    sqlitePath,
    writeGate: opts.writeGate,
    // Only SQLite has a log to checkpoint; PostgreSQL ignores it.
    walAutocheckpoint: opts.checkpoints ? SAFETY_NET_PAGES : undefined,
    // With accounts on, a push creates a repository with auth.accounts.defaultvisibility (docs/hub.md).
    newRepositoryVisibility: config.auth.accounts?.defaultvisibility ?? 'public',
  }).catch((err: unknown) => {
    // SQLite's own message ("unable to open database file") does not say which file.
    if (config.berth.database.url === undefined && sqlitePath !== ':memory:') throw new Error(`metadata database ${sqlitePath}: ${(err as Error).message}`, { cause: err });
    throw err;
  });
  const checkpointer =
    opts.checkpoints === 'here' && meta.dialect === 'sqlite' && sqlitePath !== ':memory:'
      ? WalCheckpointer.start(sqlitePath, {
          onError: (err, fatal) =>
            fatal
              ? log.error({ err }, 'WAL checkpoint thread ended; commits checkpoint the log themselves from now on')
              : log.warn({ err }, 'WAL checkpoint failed; trying again later'),
        })
      : undefined;
  const registry = new Registry(meta, store, {
    deleteEnabled: config.storage.delete.enabled,
    readOnly: config.storage.maintenance.readonly.enabled,
  });
  const accounts = config.auth.accounts;
  const discovery = createDiscovery(meta, {
    mode: accounts ? 'accounts' : 'open',
    policy: { anonymousPull: accounts?.anonymouspull ?? true },
    blobs: store,
    log,
    baseUrl: externalBaseUrl(config),
  });
  registry.manifestObserver = discovery.images;
  // Repository deletes and collections become activity; startServer adds the notification queue beside it.
  registry.events = discovery.events;
  const gc = new GarbageCollector(meta, store, log, () => registry.events);
  return {
    config,
    registry,
    gc,
    meta,
    store,
    log,
    discovery,
    async close() {
      await gc.stop(); // a collection running in the background ends at its next batch
      // This thread's pull counts are written before the database closes (each serving thread flushes its own).
      await discovery.close().catch((err: unknown) => log.error({ err }, 'could not write the last pull counts'));
      await checkpointer?.stop();
      await meta.close();
      await store.close?.();
    },
  };
}

/** http.host and http.prefix, for links in webhook payloads; null when http.host is not set (no address is known). */
function externalBaseUrl(config: Config): string | null {
  const host = config.http.host?.replace(/\/+$/, '');
  if (!host) return null;
  return host + config.http.prefix.replace(/\/+$/, '');
}

/**
 * Events to several sinks: the notification queue's failure is the caller's
 * (as before), discovery's is logged (activity must not fail a request or
 * a delete that has happened).
 */
function teeEvents(first: EventSink, hub: EventSink, log: Logger): EventSink {
  return {
    async emit(events: RegistryEvent[]) {
      const recorded = hub.emit(events).catch((err: unknown) => log.error({ err }, 'could not record activity for these events'));
      try {
        await first.emit(events);
      } finally {
        await recorded;
      }
    },
  };
}

function createAuthenticator(config: Config, log: Logger): Authenticator | undefined {
  const h = config.auth.htpasswd;
  if (!h) return undefined;
  const file = new HtpasswdFile(h.path, log);
  for (const w of file.warnings) log.warn(w);
  if (file.size === 0) log.warn({ path: h.path }, 'htpasswd file has no usable entries: every request will be refused');
  return new HtpasswdAuthenticator(file, h.realm);
}

function createHealthChecks(app: App): HealthChecks {
  const { config, log } = app;
  const health = new HealthChecks(log);
  const sd = config.health.storagedriver;
  if (sd.enabled) {
    // A stat of a blob that cannot exist exercises the store; a clean "not found" is healthy.
    const probe = `sha256:${'0'.repeat(64)}`;
    health.add(
      'storagedriver_' + app.store.kind,
      async () => {
        await app.store.stat(probe);
        await app.meta.ping();
      },
      sd.interval,
      sd.threshold,
    );
  }
  for (const f of config.health.file) health.add(f.file, fileCheck(f.file), f.interval, 1);
  for (const h of config.health.http) health.add(h.uri, httpCheck(h.uri, h.statuscode, h.timeout, h.headers), h.interval, h.threshold);
  for (const t of config.health.tcp) health.add(t.addr, tcpCheck(t.addr, t.timeout), t.interval, t.threshold);
  return health;
}

export interface Server {
  app: App;
  http: RunningServer;
  /** Hands a connection accepted elsewhere to this thread's HTTP server (when started with `handed`). */
  accept?: (socket: net.Socket) => void;
  debug?: RunningServer;
  metrics?: Metrics;
  health: HealthChecks;
  /** Where any module (edge, garbage collection, repository delete) emits events: the Hub's activity and webhooks, and the notification endpoints when configured. */
  events: EventSink;
  /** http(s)://127.0.0.1:<port> (or the configured host). */
  url: string;
  /** Accounts on: the Hub's services (tests and the API use them) and the token service. */
  hub?: Hub;
  tokens?: EdgeAuth['tokens'];
  /** The link to the other replicas (a process alone without PostgreSQL). */
  cluster: ClusterLink;
  close(drainMs?: number): Promise<void>;
}

export interface ServeOptions {
  /**
   * `single`: the API, the debug server and the scheduled jobs (a lone
   * thread, or the main thread of several). `worker`: the API only, on the
   * connections the main thread deals to it.
   */
  role?: 'single' | 'worker';
  /**
   * Do not listen: connections are accepted by the main thread and handed
   * in through `Server.accept` (in the main thread too, for its own share).
   * The port is the one the main thread listens on.
   */
  handed?: { port: number };
  /** The worker threads' metrics, for the main thread's /metrics. */
  peerMetrics?: () => Promise<Parameters<typeof aggregateMetrics>[1]>;
  /** Shared by the serving threads of one process: one writer at a time. */
  writeGate?: WriteGate;
}

/** Starts Berth in this process. */
export async function startServer(config: Config, log?: Logger, opts: ServeOptions = {}): Promise<Server> {
  const role = opts.role ?? 'single';
  const app = await createApp(config, log, { writeGate: opts.writeGate, checkpoints: role === 'worker' ? 'elsewhere' : 'here' });
  // Replicas on one PostgreSQL: change signals for this thread's caches, and the scheduled jobs' election (docs/scale.md).
  let cluster: ClusterLink;
  try {
    cluster = await openClusterLink(config.berth.database.url, app.meta.signals, app.log);
  } catch (err) {
    await app.close();
    throw err;
  }
  const auth = createAuthenticator(config, app.log);
  // Loaded only when used: a start without accounts or token auth skips their modules (about 14 ms of each thread's start).
  const edgeAuth: EdgeAuth = await (config.auth.accounts || config.auth.token ? import('./edge-auth.js').then((m) => m.createEdgeAuth(config, app)) : Promise.resolve({})).catch(async (err: unknown) => {
    await cluster.close();
    await app.close();
    throw err;
  });
  if (auth && config.berth.admins.length === 0 && role !== 'worker') app.log.warn('berth.admins is empty: /berth/v1/ (gc, repository delete, storage usage) refuses every user with 403');
  const health = createHealthChecks(app);
  // prom-client is loaded only when metrics are on: tens of ms of every start-up otherwise.
  const metricsModule = config.http.debug.prometheus.enabled ? await import('./http/metrics.js') : undefined;
  const metrics = metricsModule
    ? metricsModule.createMetrics({ uploadsInProgress: role === 'worker' ? undefined : () => countUploads(app.store), storageDriver: app.store.kind })
    : undefined;
  if (metrics) instrumentBlobStore(app.store, (action, seconds, failed) => metrics.observeStorage(action, seconds, failed));
  if (metrics) app.gc.onCollected = (summary) => metrics.gcCollected(summary);
  const tls = config.http.tls.certificate && config.http.tls.key ? { ...config.http.tls, certificate: config.http.tls.certificate, key: config.http.tls.key } : undefined;
  // Notifications: a persisted queue only when an endpoint is enabled; without one, requests build only the
  // events discovery reads (pushes and deletes), and a pull builds none.
  const source = { addr: `${hostname()}:${parseAddr(config.http.addr).port}`, instanceID: newInstanceId() };
  const notifications = config.notifications.endpoints.some((e) => !e.disabled)
    ? new NotificationQueue({ db: app.meta.db, writing: (fn) => app.meta.writing(fn), clock: () => app.meta.clock(), endpoints: config.notifications.endpoints, source, log: app.log })
    : undefined;
  // Repository deletes and collections report through the same queue, and to discovery.
  const discovery = app.discovery;
  const events = notifications ? teeEvents(notifications, discovery.events, app.log) : discovery.events;
  app.registry.events = events;

  const { host, port } = parseAddr(config.http.addr);
  let running: RunningServer;
  let accept: ((socket: net.Socket) => void) | undefined;
  {
    const handler = createRequestHandler(
      {
        registry: app.registry,
        log: app.log,
        auth,
        access: edgeAuth.access,
        token: edgeAuth.token,
        metrics,
        health,
        events,
        eventKinds: notifications ? 'all' : 'changes',
        pulls: discovery.pulls,
        v1: v1Routes({ search: discovery.search, accounts: config.auth.accounts !== undefined }),
        api: await berthApiRoutes(config, app, edgeAuth.hub, auth !== undefined, tls !== undefined),
        web: config.berth.ui.enabled ? webRoutes({ prefix: config.http.prefix, hub: config.auth.accounts ? 'accounts' : auth || config.auth.token ? 'off' : 'open' }) : undefined,
      },
      {
        prefix: config.http.prefix,
        host: config.http.host,
        relativeUrls: config.http.relativeurls,
        headers: config.http.headers,
        accessLog: !config.log.accesslog.disabled,
        tls: tls !== undefined,
        sendfile: config.berth.sendfile,
      },
    );
    if (opts.handed) {
      const handed = serveHandedConnections(handler, opts.handed.port, tls, config.http.timeouts);
      accept = handed.accept;
      running = handed;
    } else {
      running = await listen(handler, host, port, tls, config.http.timeouts);
    }
    source.addr = `${hostname()}:${running.port}`; // the real port when :0 was asked for
  }
  await notifications?.start();
  // Repository webhooks: one delivering thread per process (leases make one deliverer per webhook across processes).
  if (role !== 'worker') discovery.webhookDelivery(source.instanceID).start();

  let debug: RunningServer | undefined;
  let stopJobs = () => {};
  if (role !== 'worker') {
    if (config.http.debug.addr) {
      const d = parseAddr(config.http.debug.addr, 'http.debug.addr');
      const peers = opts.peerMetrics;
      const source = metrics && metricsModule ? (peers ? async () => metricsModule.aggregateMetrics(metrics, await peers()) : () => metrics.text()) : undefined;
      debug = await listen(createDebugHandler(health, source, config.http.debug.prometheus.path), d.host, d.port);
    }
    // Every replica's main thread stands; the one the database elects runs them.
    stopJobs = cluster.lead('scheduled jobs', () => startScheduledJobs(app));
  }
  const shownHost = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    app,
    http: running,
    debug,
    metrics,
    health,
    events,
    accept,
    hub: edgeAuth.hub,
    tokens: edgeAuth.tokens,
    cluster,
    url: `${tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${running.port}`,
    async close(drainMs = config.http.draintimeout) {
      stopJobs();
      health.stop();
      await Promise.all([running.close(drainMs), debug?.close(1000)]);
      await app.gc.stop(); // before the queue its events go to closes
      await notifications?.close();
      await cluster.close(); // ends this thread's session: no writer waits for it, and its jobs lock is free
      await app.close(); // flushes pull counts and stops webhook delivery (discovery.close)
    },
  };
}

/**
 * Berth's own API under /berth/v1/: with accounts, the Hub's JSON API first
 * (null for paths not its own), then the older routes (gc, storage); the
 * OpenAPI document lists what is served in either mode.
 */
async function berthApiRoutes(config: Config, app: App, hub: Hub | undefined, htpasswd: boolean, tls: boolean): Promise<EdgeServices['api']> {
  const version = berthVersion();
  const serverUrl = config.http.prefix === '/' ? '/' : config.http.prefix.replace(/\/$/, '');
  const registry = app.registry;
  // Loaded only when used (the API's schemas bring zod): start-up without accounts stays as quick as it was.
  // `discovery` serves the API's search, pages, stars, activity and webhooks.
  const apiOptions = { store: app.meta, deleteRepository: (name: string, actor: string | undefined) => registry.deleteRepository(name, actor), version, serverUrl, discovery: app.discovery };
  const hubRoutesIn = async (mode: 'accounts' | 'open', over: Hub) => {
    const m = await import('./http/api/hub/index.js');
    const api = m.createHubApi({ ...apiOptions, mode, hub: over, images: m.registryImages(registry) });
    return { api, routes: (await import('./http/api/mount.js')).hubApiRoutes({ api, prefix: config.http.prefix, tls }) };
  };
  let document: Record<string, unknown> | undefined;
  const older = createApiRoutes({
    gc: app.gc,
    gcDefaults: { graceMs: config.berth.gc.grace, deleteUntagged: config.berth.gc.deleteuntagged },
    // Without auth everyone is anonymous and the API stays open, as before; with htpasswd (or an
    // external token server) only berth.admins; with accounts, the Hub's administrators.
    admins: config.auth.accounts ? 'edge' : htpasswd || config.auth.token ? config.berth.admins : 'open',
    openapi: hub ? undefined : async () => (document ??= (await import('./http/api/hub/index.js')).registryApiDocument({ version, serverUrl })),
  });
  if (hub) {
    const { api, routes } = await hubRoutesIn('accounts', hub);
    const withSession = (await import('./http/api/mount.js')).withSessionCookie(api);
    return (method, path) => routes(method, path) ?? withSession(older(method, path));
  }
  // An external token server alone knows what its tokens may read: the Hub's operations stay off.
  if (config.auth.token) return older;
  // Accounts off (no auth, or htpasswd): the Hub's reading operations too, everything readable as in the
  // registry (mode 'open'; a Hub over the same store, with no accounts in it, answers the repositories'
  // facts). Loaded on the first request that may be one of them, so start-up does not load the API's schemas.
  let loading: Promise<EdgeApiRoutes> | undefined;
  let loaded: EdgeApiRoutes | undefined;
  // The reading operation's route, or the registry's own where it has one for that method (a repository's DELETE).
  // The registry's own paths have no `/-/` (a name has no `-` component): such a path is the Hub's alone.
  const pick = (open: EdgeApiRoutes, method: string, path: string) => {
    const mine = open(method, path);
    const hubOnly = /\/-(\/|$)/.test(path);
    if (mine && (mine.route !== 'api-method-not-allowed' || hubOnly)) return mine;
    if (hubOnly) return null; // a Hub path not served without accounts (stars, webhooks…): no such endpoint here
    const theirs = older(method, path);
    return theirs && theirs.route !== 'api-unknown' ? theirs : (mine ?? theirs);
  };
  return (method, path) => {
    if (loaded) return pick(loaded, method, path);
    if (!OPEN_API_PATH.test(path)) return older(method, path);
    return {
      route: 'api-open',
      decidesAccess: true,
      run: async (ctx) => {
        loaded ??= await (loading ??= hubRoutesIn('open', createHub(app.meta)).then((r) => r.routes));
        const match = pick(loaded, method, path);
        if (!match) throw new RegistryError('UNSUPPORTED', `no such API endpoint: /${path.slice(0, 200)}`, undefined, { status: 404 });
        await match.run(ctx);
      },
    };
  };
}

type EdgeApiRoutes = NonNullable<EdgeServices['api']>;
/** The paths of the open mode's operations (createHubApi's OPEN_OPERATIONS), after http.prefix. */
export const OPEN_API_PATH = /^berth\/v1\/(search$|repositories(\/|$)|namespaces\/)/;

/** Berth's version from package.json, for the OpenAPI document. */
function berthVersion(): string {
  try {
    // dist/src/app.js → the repository's package.json.
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0';
  } catch {
    return '0';
  }
}

/** Upload purging and scheduled garbage collection; returns a stop function. */
function startScheduledJobs(app: App): () => void {
  const { config } = app;
  const writable = !config.storage.maintenance.readonly.enabled;
  const purging = config.storage.maintenance.uploadpurging;
  const stopPurging =
    purging.enabled && writable ? schedulePurging(app.store, { ageMs: purging.age, intervalMs: purging.interval, dryRun: purging.dryrun }, app.log) : () => {};
  const gc = config.berth.gc;
  const stopCollecting =
    gc.enabled && config.storage.delete.enabled && writable && gc.interval > 0
      ? scheduleCollection(app.gc, gc.interval, { graceMs: gc.grace, deleteUntagged: gc.deleteuntagged }, app.log)
      : () => {};
  return () => {
    stopPurging();
    stopCollecting();
  };
}

/**
 * storage.s3 (distribution's keys) as the S3 driver's options; downloads
 * redirect unless storage.redirect.disable. The SDKs are loaded only by the
 * drivers that use them: a filesystem registry starts without them.
 */
async function s3Store(config: Config): Promise<S3BlobStore> {
  const { S3BlobStore } = await import('./storage/s3.js');
  const c = config.storage.s3;
  return new S3BlobStore({
    bucket: c.bucket!,
    region: c.region!,
    endpoint: c.regionendpoint,
    accessKey: c.accesskey,
    secretKey: c.secretkey,
    sessionToken: c.sessiontoken,
    rootDirectory: c.rootdirectory,
    forcePathStyle: c.forcepathstyle,
    secure: c.secure,
    skipVerify: c.skipverify,
    chunkSize: c.chunksize,
    multipartCopyChunkSize: c.multipartcopychunksize,
    multipartCopyMaxConcurrency: c.multipartcopymaxconcurrency,
    multipartCopyThresholdSize: c.multipartcopythresholdsize,
    storageClass: c.storageclass,
    encrypt: c.encrypt,
    keyId: c.keyid,
    redirect: !config.storage.redirect.disable,
  });
}

/** storage.azure (distribution's keys) as the Azure driver's options. */
async function azureStore(config: Config): Promise<AzureBlobStore> {
  const { AzureBlobStore } = await import('./storage/azure.js');
  const c = config.storage.azure;
  return new AzureBlobStore({
    accountName: c.accountname!,
    accountKey: c.accountkey!,
    container: c.container!,
    realm: c.realm,
    serviceUrl: c.serviceurl,
    rootDirectory: c.rootdirectory,
    redirect: !config.storage.redirect.disable,
  });
}
