/**
 * The OpenAPI document against the routers: the same set of (method, path)
 * on both sides (the Hub API's router and the older /berth/v1 routes of
 * src/http/api/index.ts), a structurally valid OpenAPI 3.1 document, and
 * docs/api.md holding its generated reference.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { GarbageCollector } from '../../../gc/index.js';
import { createApiRoutes } from '../index.js';
import { OPEN_API_PATH } from '../../../app.js';
import { HUB_DISCOVERY_OPERATIONS, HUB_OPERATIONS, LEGACY_OPERATIONS, OPEN_OPERATIONS, REGISTRY_OPERATIONS, registryApiDocument } from './index.js';
import { openApiDocument } from './openapi.js';
import { apiReference, REFERENCE_END, REFERENCE_START } from './reference.js';
import { Router } from './router.js';
import type { ParamKind } from './types.js';

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SAMPLES: Record<ParamKind, string> = { account: 'acme', namespace: 'library', team: 'devs', robot: 'ci', repository: 'acme/api/server', id: '7', run: 'latest', tag: 'v1.2', reference: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' };

// docs/api.md and the structural checks: the whole API as served with accounts on and a Discovery.
const doc = openApiDocument([...HUB_DISCOVERY_OPERATIONS, ...LEGACY_OPERATIONS], { version: 'test' });
const paths = doc.paths as Record<string, Record<string, Json>>;
const documentedIn = (d: Json) =>
  Object.entries(d.paths as Record<string, Record<string, Json>>).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));
const documented = documentedIn(doc);

/** The template with a sample value for each parameter, by the kind its operation declares. */
function concrete(template: string, operationId: string): { path: string; values: Record<string, string> } {
  const spec = [...HUB_DISCOVERY_OPERATIONS, ...LEGACY_OPERATIONS].find((o) => o.id === operationId)!;
  const values: Record<string, string> = {};
  const path = template.replace(/\{([a-z]+)\}/gi, (_, name: string) => (values[name] = SAMPLES[spec.params![name]!]));
  return { path: path.slice(1), values };
}

function resolve(ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `only local references: ${ref}`);
  let node: unknown = doc;
  for (const part of ref.slice(2).split('/')) node = (node as Json | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return node;
}

function walk(node: unknown, visit: (n: Json) => void): void {
  if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
  else if (node && typeof node === 'object') {
    visit(node as Json);
    for (const v of Object.values(node)) walk(v, visit);
  }
}

describe('OpenAPI document', () => {
  for (const [label, operations] of [
    ['without discovery', HUB_OPERATIONS],
    ['with discovery', HUB_DISCOVERY_OPERATIONS],
  ] as const) {
    it(`has exactly the operations the routers serve (${label})`, () => {
      const router = new Router(operations);
      const legacy = createApiRoutes({ gc: {} as GarbageCollector, gcDefaults: { graceMs: 0, deleteUntagged: false }, admins: 'open' });
      const listed = documentedIn(openApiDocument([...operations, ...LEGACY_OPERATIONS], { version: 'test' }));
      const expected = new Set([...operations, ...LEGACY_OPERATIONS].map((o) => `${o.method} ${o.path}`));
      assert.deepEqual(new Set(listed.map((d) => `${d.method} ${d.path}`)), expected);
      assert.equal(listed.length, expected.size);
      const legacyIds = new Set(LEGACY_OPERATIONS.map((o) => o.id));
      for (const d of listed) {
        const { path, values } = concrete(d.path, d.op.operationId as string);
        const m = router.match(d.method, path);
        if (legacyIds.has(d.op.operationId as string)) {
          // Not the Hub API's: its router leaves it to src/http/api/index.ts, which has a route for it.
          assert.equal(m, null, `${d.method} ${d.path} is left to the older routes`);
          const route = legacy(d.method, path);
          assert.ok(route && route.route !== 'api-unknown', `${d.method} ${path} has an older route`);
          continue;
        }
        assert.ok(m && m.kind === 'operation', `${d.method} ${path} routes`);
        assert.equal(m.op.id, d.op.operationId);
        assert.deepEqual(Router.params(m.op, m.params), values);
      }
      // The Hub API's routes take over the older repository route (extended, not duplicated).
      assert.equal((router.match('GET', 'berth/v1/repositories/acme/api') as { op: { id: string } }).op.id, 'getRepository');
      assert.equal((router.match('DELETE', 'berth/v1/repositories/acme/api') as { op: { id: string } }).op.id, 'deleteRepository');
      assert.equal(router.match('GET', 'berth/v1/nothing-here'), null);
      // Discovery's paths are served exactly when there is a Discovery.
      assert.equal(router.match('GET', 'berth/v1/search') !== null, label === 'with discovery');
      assert.equal(router.match('PUT', 'berth/v1/repositories/acme/api/-/star') !== null, label === 'with discovery');
    });
  }

  it('with discovery, the repository answers keep every field they had', () => {
    const shape = (ops: typeof HUB_OPERATIONS, id: string) => {
      const op = ops.find((o) => o.id === id)!;
      return Object.keys(((openApiDocument([op], { version: 't' }).paths as Record<string, Record<string, Json>>)[op.path]![op.method.toLowerCase()]!.responses as Record<string, Json>)['200']!.content as Json);
    };
    for (const id of ['getRepository', 'updateRepository']) {
      const before = HUB_OPERATIONS.find((o) => o.id === id)!.response.schema!;
      const after = HUB_DISCOVERY_OPERATIONS.find((o) => o.id === id)!.response.schema!;
      const keys = (z: unknown) => Object.keys((z as { shape: Record<string, unknown> }).shape);
      for (const k of keys(before)) assert.ok(keys(after).includes(k), `${id} keeps ${k}`);
      assert.ok(keys(after).includes('star_count') && keys(after).includes('full_description_html'), id);
      assert.deepEqual(shape(HUB_DISCOVERY_OPERATIONS, id), ['application/json']);
    }
  });

  it("with accounts off, lists the Hub's reading operations and exactly what the older routes answer, and no sessions", () => {
    const off = registryApiDocument({ version: 'test', serverUrl: '/registry' });
    const legacy = createApiRoutes({ gc: {} as GarbageCollector, gcDefaults: { graceMs: 0, deleteUntagged: false }, admins: 'open', openapi: async () => off });
    const open = new Router(OPEN_OPERATIONS);
    const listed = Object.entries(off.paths as Record<string, Json>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    assert.equal(listed.length, new Set(listed).size);
    assert.deepEqual(new Set(listed), new Set([...OPEN_OPERATIONS, ...REGISTRY_OPERATIONS].map((o) => `${o.method} ${o.path}`)));
    // The reading operations only read, and the edge (app.ts) sends each of their paths to them.
    assert.deepEqual(
      OPEN_OPERATIONS.map((o) => o.id).sort(),
      ['getRepository', 'getRepositoryManifest', 'listNamespaceActivity', 'listRepositories', 'listRepositoryActivity', 'listRepositoryTags', 'searchRepositories'],
    );
    for (const op of OPEN_OPERATIONS) {
      assert.equal(op.method, 'GET', op.id);
      const { path, values } = concrete(op.path, op.id);
      assert.match(path, OPEN_API_PATH, op.id);
      const m = open.match('GET', path);
      assert.ok(m?.kind === 'operation' && m.op.id === op.id, op.id);
      // Without accounts a name is only itself: no `library/` alias.
      assert.deepEqual(Router.params(m.op, m.params, false), values);
    }
    const ubuntu = open.match('GET', 'berth/v1/repositories/ubuntu');
    assert.ok(ubuntu?.kind === 'operation');
    assert.equal(Router.params(ubuntu.op, ubuntu.params, false).name, 'ubuntu');
    assert.equal(Router.params(ubuntu.op, ubuntu.params).name, 'library/ubuntu');
    for (const path of ['berth/v1/accounts', 'berth/v1/sessions/current', 'berth/v1/orgs/acme', 'berth/v1/me', 'berth/v1/audit']) assert.doesNotMatch(path, OPEN_API_PATH, path);
    // A route that runs (not unknown, not a refused method) is a reading operation, one with needs, or the public document.
    const served = (method: string, path: string) => {
      if (open.match(method, path)?.kind === 'operation') return true;
      const m = legacy(method, path);
      return m !== null && m.route !== 'api-unknown' && (m.needs !== undefined || (m.public === true && method === 'GET'));
    };
    const samples: Record<string, string> = { '/berth/v1/gc': 'berth/v1/gc', '/berth/v1/gc/runs/{id}': 'berth/v1/gc/runs/latest', '/berth/v1/storage': 'berth/v1/storage', '/berth/v1/repositories/{name}': 'berth/v1/repositories/a/b', '/berth/v1/openapi.json': 'berth/v1/openapi.json' };
    assert.deepEqual(Object.keys(samples).sort(), [...new Set(REGISTRY_OPERATIONS.map((o) => o.path))].sort());
    for (const [template, path] of Object.entries(samples)) {
      for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
        assert.equal(served(method, path), listed.includes(`${method} ${template}`), `${method} ${path}`);
      }
    }
    for (const path of ['berth/v1/accounts', 'berth/v1/sessions', 'berth/v1/orgs/acme', 'berth/v1/audit']) assert.equal(legacy('GET', path)?.route, 'api-unknown', path);
    const schemes = (off.components as Json).securitySchemes as Json;
    assert.deepEqual(Object.keys(schemes).sort(), ['basicAuth', 'bearerAuth']);
    walk(off.paths, (n) => assert.equal(n.sessionCookie, undefined));
    assert.deepEqual(off.servers, [{ url: '/registry' }]);
  });

  it('routes repository names with slashes as they are or percent-encoded, and ends them at /-/', () => {
    const router = new Router(HUB_OPERATIONS);
    for (const [path, id, name] of [
      ['berth/v1/repositories/a/b/c', 'getRepository', 'a/b/c'],
      ['berth/v1/repositories/a%2Fb%2Fc', 'getRepository', 'a/b/c'],
      ['berth/v1/repositories/ubuntu', 'getRepository', 'library/ubuntu'],
      ['berth/v1/repositories/a/b/-/collaborators', 'listCollaborators', 'a/b'],
      ['berth/v1/repositories/a/b/-/collaborators/bob', 'setCollaborator', 'a/b'],
    ] as const) {
      const method = id === 'setCollaborator' ? 'PUT' : 'GET';
      const m = router.match(method, path);
      assert.ok(m && m.kind === 'operation', path);
      assert.equal(m.op.id, id, path);
      assert.equal(Router.params(m.op, m.params).name, name, path);
    }
    assert.throws(() => {
      const m = router.match('GET', 'berth/v1/repositories/UPPER/case');
      if (m?.kind === 'operation') Router.params(m.op, m.params);
    }, /path\.name: invalid repository name/);
    assert.deepEqual(router.match('POST', 'berth/v1/repositories/a/b'), { kind: 'method not allowed', allowed: ['GET', 'PATCH', 'DELETE'] });
  });

  it('is an OpenAPI 3.1 document in structure', () => {
    assert.match(doc.openapi as string, /^3\.1\.\d+$/);
    const info = doc.info as Json;
    assert.equal(typeof info.title, 'string');
    assert.equal(typeof info.version, 'string');
    const schemes = (doc.components as Json).securitySchemes as Record<string, Json>;
    assert.deepEqual(Object.keys(schemes).sort(), ['basicAuth', 'bearerAuth', 'csrfToken', 'sessionCookie']);
    assert.deepEqual([schemes.basicAuth!.type, schemes.basicAuth!.scheme, schemes.bearerAuth!.scheme, schemes.sessionCookie!.in, schemes.sessionCookie!.name], ['http', 'basic', 'bearer', 'cookie', 'berth_session']);
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(paths)) {
      assert.ok(path.startsWith('/'), path);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      for (const [method, op] of Object.entries(item)) {
        const where = `${method} ${path}`;
        assert.ok(METHODS.includes(method), where);
        assert.equal(typeof op.operationId, 'string', where);
        assert.ok(!ids.has(op.operationId as string), `duplicate operationId ${String(op.operationId)}`);
        ids.add(op.operationId as string);
        const parameters = (op.parameters ?? []) as Json[];
        for (const p of parameters) {
          assert.ok(typeof p.name === 'string' && ['path', 'query', 'header', 'cookie'].includes(p.in as string), where);
          assert.ok(p.schema && typeof p.schema === 'object', `${where}: parameter ${String(p.name)} has a schema`);
        }
        const declared = parameters.filter((p) => p.in === 'path');
        assert.deepEqual(declared.map((p) => p.name).sort(), [...templated].sort(), `${where}: every templated parameter is declared, and no other`);
        assert.ok(declared.every((p) => p.required === true), `${where}: path parameters are required`);
        const responses = op.responses as Record<string, Json>;
        assert.ok(Object.keys(responses).length > 0, where);
        for (const [status, r] of Object.entries(responses)) {
          assert.match(status, /^[1-5]\d\d$/, where);
          const target = (r.$ref ? resolve(r.$ref as string) : r) as Json | undefined;
          assert.equal(typeof target?.description, 'string', `${where} ${status}: a description`);
        }
        if (op.requestBody) assert.ok(((op.requestBody as Json).content as Json)['application/json'], where);
        for (const requirement of (op.security ?? []) as Json[]) for (const name of Object.keys(requirement)) assert.ok(schemes[name], `${where}: security scheme ${name}`);
      }
    }
    walk(doc, (n) => {
      if (typeof n.$ref === 'string') assert.ok(resolve(n.$ref) !== undefined, `$ref ${n.$ref} resolves`);
    });
    // JSON Schema 2020-12 in every schema: no leftover $schema keys inside (the document names its dialect once).
    walk(doc.paths, (n) => assert.equal(n.$schema, undefined));
  });

  it('is what docs/api.md holds as its reference', () => {
    const text = readFileSync(fileURLToPath(new URL('../../../../../docs/api.md', import.meta.url)), 'utf8');
    const start = text.indexOf(REFERENCE_START);
    const end = text.indexOf(REFERENCE_END);
    assert.ok(start >= 0 && end > start, 'docs/api.md has the reference markers');
    assert.equal(text.slice(start, end + REFERENCE_END.length), apiReference(doc), 'docs/api.md is out of date: npm run build && node scripts/api-docs.mjs');
    for (const d of documented) assert.ok(text.includes(`\`${d.method} ${d.path}\``), `docs/api.md names ${d.method} ${d.path}`);
  });
});
