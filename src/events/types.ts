/**
 * Registry events in distribution's notification format (notifications/event.go):
 * the envelope `{"events":[…]}` with media type
 * application/vnd.docker.distribution.events.v2+json.
 */
export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';

export type EventAction = 'push' | 'pull' | 'delete' | 'mount';

export interface EventTarget {
  mediaType?: string;
  digest?: string;
  size?: number;
  /** Deprecated in distribution but still sent: same as size. */
  length?: number;
  repository: string;
  url?: string;
  tag?: string;
  /** For mount: the repository the blob was mounted from. */
  fromRepository?: string;
}

export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request?: { id: string; addr?: string; host?: string; method: string; useragent?: string };
  actor?: { name?: string };
  source?: { addr: string; instanceID: string };
}

/** Where the domain and the edge hand events over; delivery is someone else's job. */
export interface EventSink {
  emit(events: RegistryEvent[]): Promise<void>;
}

export const noEvents: EventSink = {
  async emit() {},
};
