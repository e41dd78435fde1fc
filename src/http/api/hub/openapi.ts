/**
 * The OpenAPI 3.1 document of /berth/v1/, generated from the operations'
 * own zod schemas (z.toJSONSchema gives JSON Schema 2020-12, which is
 * OpenAPI 3.1's dialect), plus the older operations that src/http/api
 * serves (garbage collection, storage), described here by hand.
 */
import { z } from 'zod';
import { ErrorSchema } from './schemas.js';
import type { Authentication, Method, OperationSpec, ParamKind } from './types.js';

type Json = Record<string, unknown>;
type Spec = OperationSpec<z.ZodType, z.ZodType | undefined, z.ZodType | undefined>;

const PARAMETER_DESCRIPTIONS: Record<ParamKind, { description: string; pattern?: string }> = {
  account: { description: 'an account name: 2 to 64 lower-case letters and digits, separated by ".", "_", "__" or "-"', pattern: '^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$' },
  namespace: { description: 'a namespace: an account (user or organization) name, or library', pattern: '^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$' },
  team: { description: 'a team name', pattern: '^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$' },
  robot: { description: "a robot's short name (it logs in as ORG+NAME)", pattern: '^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$' },
  repository: { description: 'a repository name; its slashes as they are or percent-encoded (%2F); a one-component name is library/NAME' },
  id: { description: 'an id', pattern: '^[1-9][0-9]*$' },
  run: { description: 'a garbage collection run id, or latest', pattern: '^(latest|[1-9][0-9]*)$' },
  tag: { description: 'a tag', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' },
  reference: { description: 'a tag, or a manifest digest (sha256:…)' },
};

function schema(s: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

function security(auth: Authentication, method: Method, sessions: boolean): Json[] {
  if (auth === 'none') return [];
  const cookie = method === 'GET' ? { sessionCookie: [] } : { sessionCookie: [], csrfToken: [] };
  const schemes: Json[] = sessions ? [{ basicAuth: [] }, { bearerAuth: [] }, cookie] : [{ basicAuth: [] }, { bearerAuth: [] }];
  return auth === 'optional' ? [{}, ...schemes] : schemes;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'invalid request (the message names the field)',
  401: 'authentication required, or wrong credentials',
  403: 'denied',
  404: 'not found, or not visible to the caller (the same answer)',
  405: 'method not allowed, or the registry refuses the operation',
  409: 'conflict',
  413: 'request body too large',
  415: 'request body is not JSON',
  500: 'server error',
};

function operationObject(op: Spec, sessions: boolean): Json {
  const parameters: Json[] = [];
  for (const [name, kind] of Object.entries(op.params ?? {})) {
    const d = PARAMETER_DESCRIPTIONS[kind];
    parameters.push({ name, in: 'path', required: true, description: d.description, schema: d.pattern ? { type: 'string', pattern: d.pattern } : { type: 'string' } });
  }
  if (op.query instanceof z.ZodObject) {
    for (const [name, field] of Object.entries(op.query.shape as Record<string, z.ZodType>)) {
      const s = schema(field, 'input');
      const p: Json = { name, in: 'query', required: !field.safeParse(undefined).success, schema: s };
      if (typeof s.description === 'string') p.description = s.description;
      parameters.push(p);
    }
  }
  const success: Json = { description: op.response.description };
  if (op.response.schema) success.content = { 'application/json': { schema: schema(op.response.schema, 'output') } };
  if (op.paginated) success.headers = { Link: { description: 'present when more entries follow: `<PATH?n=N&last=KEY>; rel="next"`', schema: { type: 'string' } } };
  const responses: Json = { [String(op.response.status)]: success };
  const statuses = [...new Set([400, ...(op.auth === 'none' ? [] : [401]), ...op.errors, 500])].sort();
  if (op.body) statuses.push(413, 415);
  for (const status of statuses) responses[String(status)] = { $ref: `#/components/responses/Error${status}` };
  const o: Json = { operationId: op.id, summary: op.summary, tags: [op.tag], security: security(op.auth, op.method, sessions), responses };
  if (op.description) o.description = op.description;
  if (parameters.length) o.parameters = parameters;
  if (op.body) o.requestBody = { required: true, content: { 'application/json': { schema: schema(op.body, 'input') } } };
  return o;
}

export interface DocumentOptions {
  version: string;
  /** Where the paths start: http.prefix without its last slash (default `/`). */
  serverUrl?: string;
  /** Accounts on (default): the session cookie and CSRF token are ways to authenticate. */
  sessions?: boolean;
}

/** The document for the given operations (the Hub API's and the older ones). */
export function openApiDocument(operations: readonly Spec[], options: DocumentOptions): Json {
  const sessions = options.sessions ?? true;
  const paths: Record<string, Json> = {};
  for (const op of operations) {
    const item = (paths[op.path] ??= {});
    const key = op.method.toLowerCase();
    if (item[key]) throw new Error(`two operations for ${op.method} ${op.path}`);
    item[key] = operationObject(op, sessions);
  }
  const responses: Json = {};
  for (const [status, description] of Object.entries(ERROR_DESCRIPTIONS)) {
    responses[`Error${status}`] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  const tags = [...new Set(operations.map((o) => o.tag))].map((name) => ({ name }));
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth API',
      version: options.version,
      description: sessions
        ? "Berth's own JSON API under /berth/v1/ (the Hub: accounts, sessions, tokens, organizations, teams, robots, repositories, the audit log; and garbage collection). Lists take ?n=&last= and answer a Link header with rel=\"next\" while more follow. Errors are {\"errors\":[{\"code\",\"message\",\"detail\"}]}. See docs/api.md."
        : "Berth's own JSON API under /berth/v1/ without accounts: garbage collection, storage usage, a repository's usage and its delete. Errors are {\"errors\":[{\"code\",\"message\",\"detail\"}]}. See docs/api.md.",
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: options.serverUrl ?? '/' }],
    tags,
    paths,
    components: {
      schemas: { Error: schema(ErrorSchema, 'output') },
      responses,
      securitySchemes: {
        basicAuth: sessions
          ? { type: 'http', scheme: 'basic', description: 'a user name with its password or a personal access token (bpat_…), or a robot (ORG+NAME) with its secret (brob_…)' }
          : { type: 'http', scheme: 'basic', description: 'a user of auth.htpasswd that berth.admins names' },
        bearerAuth: sessions
          ? { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "an access token from Berth's token endpoint" }
          : { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an access token of the auth.token server, for a user berth.admins names' },
        ...(sessions
          ? {
              sessionCookie: { type: 'apiKey', in: 'cookie', name: 'berth_session', description: 'the session POST /berth/v1/sessions opens' },
              csrfToken: { type: 'apiKey', in: 'header', name: 'X-CSRF-Token', description: "the session's csrfToken: required with the cookie on every state-changing request" },
            }
          : {}),
      },
    },
  };
}
