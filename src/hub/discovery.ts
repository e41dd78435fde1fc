/**
 * The Hub's discovery services over one metadata store: search, repository
 * pages (description, README, official flag, tags), stars and follows,
 * activity, repository webhooks, pull counting, and the registry observer
 * that records image details at push time. With accounts off (mode 'open'),
 * they serve the anonymous view of a registry where everything is public.
 */
import type { Logger } from 'pino';
import type { AccessMode, PolicyOptions } from '../access/policy.js';
import type { MetadataStore } from '../metadata/store.js';
import type { BlobStore } from '../storage/index.js';
import { ActivityService, HubEventSink, WebhookDelivery, WebhookService } from './activity.js';
import { DEFAULT_SETTINGS, HubContext } from './context.js';
import { FactsLoader } from './facts.js';
import { PullCounter, type PullCounterOptions } from './pulls.js';
import { ImageDetails, RepositoryPages } from './repository-pages.js';
import { SearchService } from './search.js';
import { StarService } from './stars.js';

export interface DiscoveryOptions {
  /** 'accounts' when auth.accounts is configured; 'open' otherwise (everything public, as registry:2). */
  mode: AccessMode;
  policy?: PolicyOptions;
  /** The blob store, read once per pushed manifest for its config (platforms, labels) or README. */
  blobs: BlobStore;
  log?: Logger;
  /** The registry's external URL (for webhook payloads' repo_url and callback_url), without a trailing slash. */
  baseUrl?: string | null;
  pulls?: PullCounterOptions;
}

export interface Discovery {
  search: SearchService;
  pages: RepositoryPages;
  stars: StarService;
  activity: ActivityService;
  webhooks: WebhookService;
  /** Feed it the registry's events (the edge's request events and the registry's own): pushes and deletes become activity and webhook deliveries. */
  events: HubEventSink;
  /** Set as Registry.manifestObserver. */
  images: ImageDetails;
  /** The edge calls pulls.pulled(repository, reference, digest) for each manifest GET answered 200. */
  pulls: PullCounter;
  /** Creates the delivery loop of repository webhooks (start() it; close() on shutdown). */
  webhookDelivery(owner: string): WebhookDelivery;
  /** Flushes pull counts and stops the delivery loop: call on a clean shutdown. */
  close(): Promise<void>;
}

export function createDiscovery(store: MetadataStore, options: DiscoveryOptions): Discovery {
  const hub = new HubContext(store, DEFAULT_SETTINGS);
  const policy = options.policy ?? { anonymousPull: true };
  const facts = new FactsLoader(hub);
  const activity = new ActivityService(hub, options.mode, policy);
  const pulls = new PullCounter(store, { log: options.log, ...options.pulls });
  const deliveries: WebhookDelivery[] = [];
  return {
    search: new SearchService(hub, options.mode, policy),
    pages: new RepositoryPages(hub, facts, options.mode, policy, activity),
    stars: new StarService(hub, facts, options.mode, policy, activity),
    activity,
    webhooks: new WebhookService(hub, facts, options.mode, policy),
    events: new HubEventSink(hub, { baseUrl: options.baseUrl ?? null, log: options.log }),
    images: new ImageDetails(hub, options.blobs, options.log),
    pulls,
    webhookDelivery(owner: string) {
      if (!options.log) throw new Error('webhook delivery needs a logger');
      const d = new WebhookDelivery(hub, { log: options.log, owner });
      deliveries.push(d);
      return d;
    },
    async close() {
      await pulls.close();
      await Promise.all(deliveries.map((d) => d.close()));
    },
  };
}
