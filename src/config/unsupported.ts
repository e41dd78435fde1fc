/**
 * Keys of distribution's that Berth accepts but does not act on. Those that
 * change what a user gets (a pull-through cache, a CDN redirect, e-mail on
 * errors…) give a loud warning that names the key and says what is missing;
 * those that change nothing a user sees (caches, tuning knobs) stay quiet or
 * give one informational line. Remove an entry when its feature exists.
 */
import type { Tree } from './env.js';
import { yamlBool } from './schema.js';

export interface Findings {
  /** Logged as warnings: the user does not get what the key asks for. */
  warnings: string[];
  /** Logged as info: accepted, nothing a user would notice is lost. */
  notices: string[];
}

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `tree.a.b.c`, each key matched case-insensitively (as distribution's parser matches them). */
function get(tree: unknown, ...keys: string[]): unknown {
  let node = tree;
  for (const key of keys) {
    if (!isTree(node)) return undefined;
    const k = Object.keys(node).find((x) => x.toLowerCase() === key);
    if (k === undefined) return undefined;
    node = node[k];
  }
  return node;
}

const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0) && !(isTree(v) && Object.keys(v).length === 0);
const truthy = (v: unknown): boolean => yamlBool(v) === true;
const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

const PROXY_WHY =
  'Berth has no pull-through cache yet: nothing is fetched from that registry, a pull of an image not pushed here answers 404, and pushes are accepted (a distribution proxy refuses them)';

/** `raw` is the configuration tree after the REGISTRY_* overrides, before validation. */
export function unsupportedKeys(raw: Tree, opts: { tlsClientCAs: boolean; httpAddr: string; tlsCertificate: boolean }): Findings {
  const warnings: string[] = [];
  const notices: string[] = [];
  const warn = (key: string, why: string) => warnings.push(`${key} is not supported and is ignored: ${why}`);

  const remote = get(raw, 'proxy', 'remoteurl');
  if (given(remote)) warn('proxy.remoteurl', `${PROXY_WHY} (remoteurl ${text(remote)})`);

  const middleware = get(raw, 'middleware');
  if (isTree(middleware)) {
    for (const [kind, list] of Object.entries(middleware)) {
      const entries = Array.isArray(list) ? list : given(list) ? [list] : [];
      entries.forEach((m, i) => {
        if (truthy(get(m, 'disabled'))) return;
        const name = String(get(m, 'name') ?? '?');
        const key = `middleware.${kind.toLowerCase()}[${i}] (${name})`;
        if (kind.toLowerCase() === 'storage') {
          const target = given(get(m, 'options', 'baseurl')) ? text(get(m, 'options', 'baseurl')) : name;
          warn(key, `blob downloads are not redirected to ${target}; clients fetch every byte from this registry`);
        } else {
          warn(key, `requests are served as if this ${kind.toLowerCase()} middleware were absent`);
        }
      });
    }
  }

  const hooks = get(raw, 'log', 'hooks');
  if (Array.isArray(hooks)) {
    hooks.forEach((h, i) => {
      if (!truthy(get(h, 'disabled'))) warn(`log.hooks[${i}] (${text(get(h, 'type') ?? '?')})`, 'no message (e-mail) is sent when errors are logged');
    });
  }
  for (const service of ['bugsnag', 'newrelic']) {
    if (given(get(raw, 'reporting', service))) warn(`reporting.${service}`, `errors are not reported to ${service === 'bugsnag' ? 'Bugsnag' : 'New Relic'}`);
  }

  const letsencrypt = get(raw, 'http', 'tls', 'letsencrypt');
  if (given(get(letsencrypt, 'cachefile')) || given(get(letsencrypt, 'hosts'))) {
    warn(
      'http.tls.letsencrypt',
      opts.tlsCertificate
        ? 'no certificate is obtained from Let’s Encrypt; http.tls.certificate is served instead'
        : `no certificate is obtained from Let’s Encrypt: Berth serves plain HTTP on ${opts.httpAddr}, and clients expecting HTTPS cannot connect`,
    );
  }
  if (given(get(raw, 'http', 'tls', 'ciphersuites'))) warn('http.tls.ciphersuites', 'Node’s default cipher suites are offered, not this list');
  const clientauth = get(raw, 'http', 'tls', 'clientauth');
  if (opts.tlsClientCAs && given(clientauth) && String(clientauth).toLowerCase() !== 'require-and-verify-client-cert') {
    warn('http.tls.clientauth', `every client must still present a certificate signed by one of http.tls.clientcas (require-and-verify-client-cert), not ${text(clientauth)}`);
  }
  if (truthy(get(raw, 'http', 'h2c', 'enabled'))) warn('http.h2c.enabled', 'cleartext HTTP/2 is not served; clients must speak HTTP/1.1 (or HTTP/2 over TLS)');

  const urls = get(raw, 'validation', 'manifests', 'urls');
  if (given(get(urls, 'allow')) || given(get(urls, 'deny'))) {
    warn('validation.manifests.urls', 'the allow and deny patterns are not applied: a manifest whose foreign or non-distributable layers carry URLs is accepted whatever the URLs');
  }
  if (truthy(get(raw, 'validation', 'disabled')) || yamlBool(get(raw, 'validation', 'enabled')) === false) {
    warn('validation.disabled', 'manifests are still validated: a manifest that references blobs not pushed to the repository is refused');
  }
  if (truthy(get(raw, 'compatibility', 'schema1', 'enabled'))) warn('compatibility.schema1.enabled', 'Docker schema1 manifests are still refused');
  if (given(get(raw, 'catalog', 'maxentries'))) warn('catalog.maxentries', 'a /v2/_catalog page holds at most 1000 repositories, whatever this says');
  if (truthy(get(raw, 'notifications', 'events', 'includereferences'))) {
    warn('notifications.events.includereferences', 'manifest events do not list the manifest’s references (layers, config, children)');
  }

  // distribution uses redis for the blob-descriptor cache (and a health check of it) only.
  if (given(get(raw, 'redis'))) {
    notices.push('redis is not used: Berth keeps blob descriptors in its metadata database (SQLite, or PostgreSQL with berth.database.url), which is also what replicas share');
  }
  if (given(get(raw, 'policy', 'repository', 'classes'))) notices.push('policy.repository.classes is accepted and not used');
  return { warnings, notices };
}
