/** What the API's shared test suite (suite.ts) and its discovery part (discovery-tests.ts) both speak in. */
import type { Principal } from '../../../access/types.js';
import type { MetadataStore } from '../../../metadata/store.js';
import type { HubApi } from './index.js';

export interface ApiEngine {
  store: MetadataStore;
  cleanup(): Promise<void>;
}

export interface Call {
  principal?: Principal;
  body?: unknown;
  rawBody?: string;
  contentType?: string;
  cookie?: string;
  csrf?: string;
  client?: string;
  tls?: boolean;
  /** Another API than the suite's own (the one with a Discovery). */
  via?: HubApi;
}
