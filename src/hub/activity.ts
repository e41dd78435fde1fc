/**
 * Activity and repository webhooks.
 *
 * Activity: every push, tag, delete, visibility or permission change, star
 * and README or description change, per repository and per namespace, with
 * the actor, the database's time and the digest. Pushes and deletes come
 * from the registry's events (`HubEventSink`, which the edge feeds the same
 * events it gives the notification queue); the Hub's own acts are recorded
 * by its services. Readable a page at a time, filtered by what the reader
 * may read now.
 *
 * Webhooks: per repository, managed by whoever holds admin on it; a push
 * with a tag queues one Hub-style payload per active webhook into the
 * persistent notification queue (endpoint `webhook:ID`), and
 * `WebhookDelivery` delivers them with the queue's own endpoint loop (lease,
 * in-order at-least-once delivery, breaker backoff), one JSON document per POST.
 */
import type { Logger } from 'pino';
import { decide, type AccessMode, type PolicyOptions } from '../access/policy.js';
import type { Principal } from '../access/types.js';
import { EndpointWorker, type EndpointConfig, type WorkerSettings } from '../events/queue.js';
import type { EventSink, RegistryEvent } from '../events/types.js';
import { webhookEndpoint, type ActivityEntry, type NewActivity, type WebhookRow } from '../metadata/discovery.js';
import type { Actor, HubContext } from './context.js';
import { HubError } from './errors.js';
import type { FactsLoader } from './facts.js';
import { readableCondition } from './listing.js';

/** Manifest media types: a push or delete event about anything else (a blob) is not activity. */
const BLOB_MEDIA_TYPE = 'application/octet-stream';
const WEBHOOK_EVENTS = new Set(['push']);
const MAX_WEBHOOKS_PER_REPOSITORY = 20;

/**
 * The namespace an activity entry is filed under: the first path component,
 * or '' for a one-component name (unlike names.ts's namespaceOf, which
 * returns the whole name).
 */
export const activityNamespace = (repository: string): string => {
  const slash = repository.indexOf('/');
  return slash < 0 ? '' : repository.slice(0, slash);
};

export class ActivityService {
  constructor(
    private readonly hub: HubContext,
    private readonly mode: AccessMode,
    private readonly policy: PolicyOptions,
  ) {}

  record(entries: NewActivity[]): Promise<void> {
    return this.hub.discovery.appendActivity(entries);
  }

  /**
   * A page of activity, newest first, older than `before` (the last id of
   * the previous page): of one repository, one namespace, or (`feed`) what
   * `principal` follows. Entries about repositories the reader may not read are left out.
   */
  async read(
    principal: Principal,
    scope: { repository: string } | { namespace: string } | 'feed',
    page: { before?: number; limit?: number } = {},
  ): Promise<{ entries: ActivityEntry[]; next: number | null }> {
    const limit = Math.min(Math.max(Math.floor(page.limit ?? 50), 1), 200);
    let s: { repository: string } | { namespace: string } | { follower: number };
    if (scope === 'feed') {
      if (principal.kind !== 'user') throw new HubError('INVALID', 'a feed is for a signed-in user');
      s = { follower: principal.id };
    } else s = scope;
    const readable = readableCondition(this.mode, principal, this.policy, { name: 'r.name', visibility: 'r.visibility', at: await this.hub.store.clock() });
    const entries = await this.hub.discovery.activity(s, readable, { before: page.before, limit });
    return { entries, next: entries.length === limit ? entries[entries.length - 1]!.id : null };
  }
}

/** Hub-style webhook payload (Docker Hub's: repository, push_data, callback_url). */
export function webhookPayload(hook: WebhookRow, event: { tag: string; pusher: string | null; pushedAt: number; digest: string | null }, baseUrl: string | null): string {
  const namespace = activityNamespace(hook.repository);
  const name = namespace ? hook.repository.slice(namespace.length + 1) : hook.repository;
  return JSON.stringify({
    callback_url: baseUrl ? `${baseUrl}/berth/v1/webhooks/${hook.id}/callback` : null,
    push_data: { pushed_at: Math.floor(event.pushedAt / 1000), pusher: event.pusher ?? '', tag: event.tag, images: event.digest ? [event.digest] : [] },
    repository: {
      repo_name: hook.repository,
      namespace,
      name,
      owner: namespace,
      is_official: namespace === 'library',
      status: 'Active',
      repo_url: baseUrl ? `${baseUrl}/r/${hook.repository}` : null,
    },
    webhook: { id: hook.id, name: hook.name },
  });
}

/**
 * The registry's events as activity and webhook deliveries: a manifest push
 * (per tag; a push by digest alone is recorded without one; 'tag' when the
 * tag was given to a manifest the repository already held), a tag or
 * manifest delete (a blob delete event looks the same and is recorded too).
 * Pulls, mounts and blob pushes are not activity (pulls are counted by PullCounter).
 */
export class HubEventSink implements EventSink {
  constructor(
    private readonly hub: HubContext,
    private readonly options: { baseUrl?: string | null; log?: Pick<Logger, 'warn'> } = {},
  ) {}

  async emit(events: RegistryEvent[]): Promise<void> {
    const entries: NewActivity[] = [];
    const pushes: { repository: string; tag: string; digest: string | null; actor: string | null }[] = [];
    for (const e of events) {
      const repository = e.target.repository;
      const actor = e.actor?.name ?? null;
      const manifest = e.target.mediaType !== undefined && e.target.mediaType !== BLOB_MEDIA_TYPE;
      if (e.action === 'push' && manifest) {
        // A tag given to a manifest the repository already held is a 'tag', not a 'push'.
        const action = e.target.tag !== undefined && (await this.hub.discovery.retagged(repository, e.target.tag)) ? 'tag' : 'push';
        entries.push({ repository, namespace: activityNamespace(repository), actor, action, tag: e.target.tag ?? null, digest: e.target.digest ?? null });
        if (e.target.tag) pushes.push({ repository, tag: e.target.tag, digest: e.target.digest ?? null, actor });
      } else if (e.action === 'delete') {
        // A tag, a manifest (by digest, or by a repository delete), or a blob: the edge's events do not tell the last two apart by route.
        entries.push({ repository, namespace: activityNamespace(repository), actor, action: 'delete', tag: e.target.tag ?? null, digest: e.target.digest ?? null });
      }
    }
    await this.hub.discovery.appendActivity(entries);
    if (pushes.length === 0) return;
    const at = await this.hub.store.clock();
    for (const p of pushes) {
      await this.hub.discovery.enqueueWebhooks(p.repository, 'push', (hook) => webhookPayload(hook, { tag: p.tag, pusher: p.actor, pushedAt: at, digest: p.digest }, this.options.baseUrl ?? null));
    }
  }
}

export interface WebhookInput {
  name: string;
  url: string;
  events?: string[];
}

function checkWebhook(w: Partial<WebhookInput>): void {
  if (w.name !== undefined && (typeof w.name !== 'string' || !/^[\w .-]{1,100}$/.test(w.name))) throw new HubError('INVALID', 'a webhook name is 1 to 100 letters, digits, spaces, ".", "_" or "-"');
  if (w.url !== undefined) {
    let u: URL;
    try {
      u = new URL(w.url);
    } catch {
      throw new HubError('INVALID', 'the webhook URL is not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new HubError('INVALID', 'a webhook URL must be http or https');
    if (w.url.length > 2000) throw new HubError('INVALID', 'the webhook URL is too long');
  }
  if (w.events !== undefined && (!Array.isArray(w.events) || w.events.length === 0 || w.events.some((e) => !WEBHOOK_EVENTS.has(e)))) {
    throw new HubError('INVALID', `webhook events must be a non-empty list of: ${[...WEBHOOK_EVENTS].join(', ')}`);
  }
}

/** Repository webhooks, managed by whoever holds admin on the repository. */
export class WebhookService {
  constructor(
    private readonly hub: HubContext,
    private readonly facts: FactsLoader,
    private readonly mode: AccessMode,
    private readonly policy: PolicyOptions,
  ) {}

  private async admin(principal: Principal, repository: string): Promise<void> {
    const facts = await this.facts.facts(principal, repository);
    if (!facts.exists || !decide(this.mode, principal, 'pull', facts, this.policy).allowed) throw new HubError('NOT_FOUND', `no repository ${repository}`);
    if (!decide(this.mode, principal, 'delete', facts, this.policy).allowed) throw new HubError('FORBIDDEN', `webhooks of ${repository} are managed by its admins`);
  }

  async list(principal: Principal, repository: string): Promise<WebhookRow[]> {
    await this.admin(principal, repository);
    return this.hub.discovery.webhooks(repository);
  }

  async create(principal: Principal, repository: string, input: WebhookInput, actor: Actor): Promise<WebhookRow> {
    checkWebhook(input);
    if (input.name === undefined || input.url === undefined) throw new HubError('INVALID', 'a webhook needs a name and a URL');
    await this.admin(principal, repository);
    if ((await this.hub.discovery.webhooks(repository)).length >= MAX_WEBHOOKS_PER_REPOSITORY) throw new HubError('INVALID', `a repository has at most ${MAX_WEBHOOKS_PER_REPOSITORY} webhooks`);
    const row = await this.hub.discovery.createWebhook(repository, { name: input.name, url: input.url, events: input.events ?? ['push'], createdBy: actor.name });
    if (row === 'taken') throw new HubError('NAME_TAKEN', `${repository} has a webhook named ${input.name} already`);
    if (row === null) throw new HubError('NOT_FOUND', `no repository ${repository}`);
    await this.hub.audit(actor, 'webhook.create', repository, { id: row.id, name: row.name });
    return row;
  }

  async update(principal: Principal, repository: string, id: number, change: { url?: string; events?: string[]; active?: boolean }, actor: Actor): Promise<void> {
    checkWebhook(change);
    await this.admin(principal, repository);
    if (!(await this.hub.discovery.updateWebhook(repository, id, change))) throw new HubError('NOT_FOUND', `no webhook ${id} in ${repository}`);
    await this.hub.audit(actor, 'webhook.update', repository, { id, ...change, url: change.url === undefined ? undefined : '(changed)' });
  }

  async delete(principal: Principal, repository: string, id: number, actor: Actor): Promise<void> {
    await this.admin(principal, repository);
    if (!(await this.hub.discovery.deleteWebhook(repository, id))) throw new HubError('NOT_FOUND', `no webhook ${id} in ${repository}`);
    await this.hub.audit(actor, 'webhook.delete', repository, { id });
  }
}

export interface WebhookDeliveryOptions {
  log: Logger;
  /** This process, as the lease owner. */
  owner: string;
  pollMs?: number;
  leaseMs?: number;
  timeoutMs?: number;
  /** Failures in a row before waiting `backoffMs` between attempts (the notification breaker). */
  threshold?: number;
  backoffMs?: number;
}

/**
 * Delivers queued webhook events: every `pollMs` it looks for webhook
 * endpoints with events waiting and runs the notification queue's endpoint
 * loop for each (stopped again once its queue is empty), so an idle
 * registry with many webhooks runs no loop at all. Events of a deleted
 * webhook go with it.
 */
export class WebhookDelivery {
  private readonly workers = new Map<string, EndpointWorker>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly hub: HubContext,
    private readonly options: WebhookDeliveryOptions,
  ) {}

  start(): void {
    const poll = this.options.pollMs ?? 1000;
    this.timer = setInterval(() => void this.sync(), poll);
    this.timer.unref();
    void this.sync();
  }

  /** One look at what is waiting: loops started for new endpoints, stopped for drained ones. */
  sync(): Promise<void> {
    this.running ??= this.syncOnce()
      .catch((err: unknown) => this.options.log.warn({ err }, 'webhook delivery: could not look for queued events'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    if (this.closed) return;
    const pending = new Set(await this.hub.discovery.pendingWebhookEndpoints());
    for (const [endpoint, worker] of this.workers) {
      if (!pending.has(endpoint)) {
        this.workers.delete(endpoint);
        await worker.stop();
      }
    }
    for (const endpoint of pending) {
      if (this.workers.has(endpoint)) continue;
      const hook = await this.hub.discovery.webhookById(Number(endpoint.slice('webhook:'.length)));
      if (!hook || !hook.active) continue;
      const config: EndpointConfig = {
        name: webhookEndpoint(hook.id),
        disabled: false,
        url: hook.url,
        headers: {},
        timeout: this.options.timeoutMs ?? 5_000,
        threshold: this.options.threshold ?? 3,
        backoff: this.options.backoffMs ?? 30_000,
        ignoredmediatypes: [],
        ignore: { mediatypes: [], actions: [] },
      };
      const settings: WorkerSettings = {
        pollMs: this.options.pollMs ?? 1000,
        leaseMs: this.options.leaseMs ?? 10_000,
        maxBatch: 1,
        owner: this.options.owner,
        writing: (fn) => this.hub.store.writing(fn),
        clock: () => this.hub.store.clock(),
        single: true,
      };
      const worker = new EndpointWorker(this.hub.store.db, config, settings, this.options.log.child({ webhook: hook.id }) as Logger);
      await worker.ensureRow();
      this.workers.set(endpoint, worker);
      worker.start();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
  }
}
