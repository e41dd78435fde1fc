export { EVENTS_MEDIA_TYPE, noEvents } from './types.js';
export type { EventAction, EventSink, EventTarget, RegistryEvent } from './types.js';
