/**
 * The JSON API (/berth/v1/, docs/api.md) as the UI calls it: same-origin
 * fetches with the session cookie, the session's CSRF token on every
 * change, and the API's `{"errors":[…]}` turned into an ApiFailure. The UI
 * has no other way to the registry's data.
 */

/** http.prefix, from the shell (`/` or `/registry/`). */
export const PREFIX = document.querySelector('meta[name="berth-prefix"]')?.getAttribute('content') ?? '/';
const API = `${PREFIX}berth/v1/`;

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
export function setCsrf(token: string | null): void {
  csrfToken = token;
}

type Query = Record<string, string | number | boolean | undefined | null>;

export function qs(query: Query | undefined): string {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** A repository name in an API path: its slashes kept (the API takes them as they are). */
export const repoPath = (name: string) => `repositories/${name.split('/').map(encodeURIComponent).join('/')}`;

export async function api<T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(`${API}${path}${qs(options.query)}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiFailure(0, 'NETWORK', 'The registry cannot be reached. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: an error page from something in between
  }
  if (!res.ok) {
    const e = (data as { errors?: { code?: string; message?: string }[] } | undefined)?.errors?.[0];
    throw new ApiFailure(res.status, e?.code ?? 'HTTP_' + res.status, e?.message ?? `${res.status} ${res.statusText}`);
  }
  return data as T;
}

// ---- the shapes the UI reads (from the API's OpenAPI document) ----------------------

export interface Page<T> {
  items: T[];
  next: string | null;
}
export interface Counted<T> extends Page<T> {
  count: number;
}

export interface Me {
  kind: 'user' | 'robot';
  name: string;
  admin: boolean;
  email: string | null;
  organizations: string[];
}

export interface Session {
  name: string;
  csrfToken: string;
  expiresAt: number;
}

export interface SearchResult {
  name: string;
  namespace: string;
  short_name: string;
  description: string;
  star_count: number;
  pull_count: number;
  is_official: boolean;
  last_updated: string | null;
  last_pulled: string | null;
}

export interface Repository {
  name: string;
  namespace: string;
  owner: { name: string; kind: 'user' | 'org' } | null;
  visibility: 'public' | 'private';
  tags: number;
  sizeBytes: number;
  permission: 'read' | 'write' | 'admin';
  description: string;
  is_private: boolean;
  is_official: boolean;
  star_count: number;
  pull_count: number;
  last_updated: string | null;
  last_pulled: string | null;
  date_registered: string;
  full_description: string;
  full_description_html: string;
  has_starred: boolean;
}

export interface Tag {
  name: string;
  digest: string;
  media_type: string;
  full_size: number | null;
  last_updated: string;
  last_pulled: string | null;
  images: { architecture: string; os: string; variant: string | null; digest: string; size: number; last_pulled: string | null }[];
}

export interface ActivityEntry {
  id: number;
  at: number;
  repository: string | null;
  namespace: string;
  actor: string | null;
  action: string;
  tag: string | null;
  digest: string | null;
  detail: Record<string, unknown> | null;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface ManifestDetail {
  digest: string;
  mediaType: string;
  size: number;
  manifest: Record<string, unknown>;
  kind: 'image' | 'index' | 'artifact';
  artifactType: string | null;
  manifests: Descriptor[];
  layers: Descriptor[];
  config: {
    digest: string;
    size: number;
    os: string | null;
    architecture: string | null;
    variant: string | null;
    created: string | null;
    author: string | null;
    user: string | null;
    workingDir: string | null;
    entrypoint: string[] | null;
    cmd: string[] | null;
    env: string[];
    exposedPorts: string[];
    labels: Record<string, string>;
  } | null;
  history: { created: string | null; created_by: string | null; comment: string | null; empty_layer: boolean }[];
  referrers: Descriptor[];
}

export interface Token {
  id: number;
  name: string;
  scopes: string[];
  expiresAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
  revoked: boolean;
  secret?: string;
}

export interface Account {
  name: string;
  kind: 'user' | 'org';
  email: string | null;
  admin: boolean;
  disabled: boolean;
  createdAt: number;
}

export interface AuditEntry {
  id: number;
  at: number;
  actor: string | null;
  action: string;
  target: string | null;
  client: string | null;
  detail: Record<string, unknown> | null;
}
