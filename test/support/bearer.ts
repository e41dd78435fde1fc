/**
 * A registry client's side of the Docker token flow, for tests that talk
 * plain HTTP: a request answered 401 with a `Bearer` challenge is retried
 * with a token fetched from the challenge's realm (`GET realm?service=…&
 * scope=…`, Basic credentials when given), as docker, containerd and the
 * OCI conformance suite do. Tokens are kept per resource and reused for the
 * next requests to it; a token that lacks an action (a 401 with
 * insufficient_scope) is replaced by one for every action asked so far.
 */

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` → its scheme and parameters (quoted strings unescaped). */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /^(\S+)\s*(.*)$/s.exec(header.trim());
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

interface Held {
  token: string;
  actions: Set<string>;
}

/** The resource a request is about, as a challenge would name it; null for /v2/ itself. */
function resourceOf(url: URL): string | null {
  const path = url.pathname.replace(/^.*?\/v2\//, '');
  if (path === '_catalog') return 'registry:catalog';
  const m = /^(.+?)\/(manifests|blobs|tags|referrers)\//.exec(path);
  return m ? `repository:${m[1]}` : null;
}

export class BearerClient {
  /** By registry origin and resource (`repository:NAME`, `registry:catalog`); '' is the API root's. */
  private readonly held = new Map<string, Held>();
  /** How often a challenge was answered with a new token. */
  readonly stats = { challenges: 0, tokens: 0 };

  /** Credentials for one registry (by origin), when they differ from the default ones. */
  private readonly perOrigin = new Map<string, { user: string; password: string }>();

  constructor(
    private readonly credentials?: { user: string; password: string },
    private readonly inner: typeof fetch = globalThis.fetch,
  ) {}

  /** Sends `credentials` to the token endpoint of the registry at `origin`. */
  use(origin: string, credentials: { user: string; password: string }): void {
    this.perOrigin.set(origin, credentials);
  }

  /** A fetch that answers Bearer challenges. Requests that carry their own Authorization go as they are. */
  readonly fetch: typeof fetch = async (input, init = {}) => {
    if (typeof input !== 'string' && !(input instanceof URL)) return this.inner(input, init);
    const url = new URL(input);
    const headers = new Headers(init.headers);
    if (headers.has('authorization')) return this.inner(input, init);
    const known = this.held.get(`${url.origin} ${resourceOf(url) ?? ''}`)?.token;
    // A streamed body can be sent once: keep a copy for the retry.
    let body = init.body;
    let spare: ReadableStream | undefined;
    if (body instanceof ReadableStream) [body, spare] = body.tee();
    if (known) headers.set('authorization', `Bearer ${known}`);
    const first = await this.inner(input, { ...init, headers, body });
    if (first.status !== 401) {
      void spare?.cancel();
      return first;
    }
    const challenge = parseChallenge(first.headers.get('www-authenticate'));
    if (!challenge || challenge.scheme !== 'bearer' || !challenge.params.realm) return first;
    await first.arrayBuffer();
    const token = await this.answer(url.origin, challenge);
    headers.set('authorization', `Bearer ${token}`);
    return this.inner(input, { ...init, headers, body: spare ?? init.body });
  };

  /** A token for what the challenge asks, plus what was asked before on the same resources (so one token serves pull and push). */
  async answer(origin: string, challenge: Challenge): Promise<string> {
    this.stats.challenges++;
    const wanted = new Map<string, Set<string>>();
    for (const scope of (challenge.params.scope ?? '').split(' ').filter(Boolean)) {
      const last = scope.lastIndexOf(':');
      const resource = scope.slice(0, last);
      const actions = new Set([...(this.held.get(`${origin} ${resource}`)?.actions ?? []), ...scope.slice(last + 1).split(',')]);
      wanted.set(resource, actions);
    }
    const query = new URLSearchParams();
    if (challenge.params.service) query.set('service', challenge.params.service);
    for (const [resource, actions] of wanted) query.append('scope', `${resource}:${[...actions].join(',')}`);
    const headers: Record<string, string> = {};
    const credentials = this.perOrigin.get(origin) ?? this.credentials;
    if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
    const res = await this.inner(`${challenge.params.realm}?${query}`, { headers });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${text.slice(0, 300)}`);
    const token = (JSON.parse(text) as { token: string }).token;
    this.stats.tokens++;
    for (const [resource, actions] of wanted) this.held.set(`${origin} ${resource}`, { token, actions });
    // Any valid token opens the API root.
    if (wanted.size === 0 || !this.held.has(`${origin} `)) this.held.set(`${origin} `, { token, actions: new Set() });
    return token;
  }

  /**
   * The Authorization header a raw request for `path` should carry: the
   * token flow run with a bodiless probe of the same method and path (with
   * token auth on, a request without credentials is refused before anything
   * is done).
   */
  async authorization(baseUrl: string, method: string, path: string): Promise<string> {
    let url: URL;
    let probe: Response;
    try {
      url = new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
      const known = this.held.get(`${url.origin} ${resourceOf(url) ?? ''}`)?.token;
      if (known) return `Bearer ${known}`;
      probe = await this.inner(url, { method });
      await probe.arrayBuffer();
    } catch {
      // A path fetch cannot send (hostile tests): the raw request goes without a token.
      return '';
    }
    const challenge = parseChallenge(probe.headers.get('www-authenticate'));
    if (probe.status !== 401 || !challenge || challenge.scheme !== 'bearer') return '';
    return `Bearer ${await this.answer(url.origin, challenge)}`;
  }
}
