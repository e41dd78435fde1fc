/**
 * The API's request and response shapes, described once with zod: the
 * handlers validate with them and the OpenAPI document is generated from
 * them (openapi.ts). Bodies are strict objects: a misspelt field is an
 * error, not silently ignored.
 */
import { z } from 'zod';
import { parseDuration } from '../../../config/index.js';
import { MAX_DESCRIPTION_CHARS, MAX_README_BYTES } from '../../../hub/readme.js';
import { isValidName } from '../../../registry/reference.js';

/** A repository name as the registry accepts one, checked before it reaches a query. */
const RepositoryName = z.string().max(256).refine(isValidName, { message: 'not a valid repository name' });
/** A team's or robot's grant: a repository name, or '*' for every repository of the organization. */
const GrantTarget = z.union([z.literal('*'), RepositoryName]);
/** A namespace: a repository name's first component (a user or organization). */
const NamespaceName = z
  .string()
  .max(256)
  .refine((v) => isValidName(v) && !v.includes('/'), { message: 'not a valid namespace (one component of a repository name)' });

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

// ---- shared pieces --------------------------------------------------------------

const time = z.number().int().describe('milliseconds since the epoch');
const optionalTime = time.nullable();
export const PermissionSchema = z.enum(['read', 'write', 'admin']).describe('read pulls; write also pushes; admin also deletes and manages settings');
export const PermissionOrNoneSchema = z.enum(['read', 'write', 'admin', 'none']).describe('read, write or admin; none removes the grant');
export const ScopeSchema = z.enum(['read', 'write', 'delete']);
export const VisibilitySchema = z.enum(['public', 'private']);

/** `30d`, `12h`, `90m` or any Go duration, positive: milliseconds. */
export function durationMs(text: string): number | null {
  const days = /^(\d{1,5})d$/.exec(text);
  let ms: number;
  try {
    ms = days ? Number(days[1]) * 86_400_000 : parseDuration(text, 'duration');
  } catch {
    return null;
  }
  return ms > 0 && Number.isFinite(ms) ? ms : null;
}

const Duration = z
  .string()
  .max(32)
  .refine((s) => durationMs(s) !== null, 'must be a positive duration such as 30d, 12h or 90m')
  .describe('a duration: 30d, 12h, 90m (or any Go duration)');

/** Pagination of every list: `n` entries after `last` (the last key of the previous page). */
export const PageQuery = z.strictObject({
  n: z.coerce.number().int().min(1).max(MAX_PAGE).default(DEFAULT_PAGE).describe(`entries per page, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`),
  last: z.string().min(1).max(300).optional().describe("the previous page's last key (as in the Link header's next URL)"),
});

export const ErrorSchema = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string(), detail: z.unknown().optional() })),
});

const list = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    next: z.string().nullable().describe("the `last` to ask for the next page; null on the last page (the Link header has the same)"),
  });

// ---- accounts -------------------------------------------------------------------

export const AccountSchema = z.object({
  name: z.string(),
  kind: z.enum(['user', 'org']),
  email: z.string().nullable(),
  admin: z.boolean(),
  disabled: z.boolean(),
  createdAt: time,
});
export const AccountListSchema = list(AccountSchema);

export const RegisterBody = z.strictObject({
  name: z.string().max(64).describe('2 to 64 characters: lower-case letters and digits separated by ".", "_", "__" or "-"'),
  password: z.string().min(8).max(1024),
  email: z.string().max(254).nullable().optional(),
  invitation: z.string().max(200).optional().describe('the invitation code, when registration is by invitation'),
  admin: z.boolean().optional().describe('administrators only: create an administrator'),
});

export const AccountListQuery = PageQuery.extend({ kind: z.enum(['user', 'org']).optional() });

export const PasswordBody = z.strictObject({
  current: z.string().max(1024).optional().describe('required when changing your own password'),
  password: z.string().min(8).max(1024),
});

export const EmailBody = z.strictObject({ email: z.string().max(254).nullable() });

export const MeSchema = z.object({
  kind: z.enum(['user', 'robot']),
  name: z.string(),
  admin: z.boolean(),
  email: z.string().nullable(),
  organizations: z.array(z.string()),
  token: z.object({ id: z.number().int(), scopes: z.array(ScopeSchema) }).nullable().describe('the personal access token the request authenticated with'),
  authenticatedBy: z.enum(['authorization', 'session']),
});

// ---- sessions -------------------------------------------------------------------

export const LoginBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1024).describe('a password, a personal access token or a robot secret'),
});

export const SessionSchema = z.object({
  name: z.string(),
  csrfToken: z.string().describe('send it as X-CSRF-Token with every state-changing request authenticated by the session cookie'),
  expiresAt: time,
});

// ---- personal access tokens ---------------------------------------------------------

export const TokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  scopes: z.array(ScopeSchema),
  expiresAt: optionalTime,
  lastUsedAt: optionalTime,
  createdAt: time,
  revoked: z.boolean(),
});
export const TokenListSchema = list(TokenSchema);
export const NewTokenSchema = TokenSchema.extend({ secret: z.string().describe('shown once: use it as the password of docker login') });
export const TokenBody = z.strictObject({
  name: z.string().min(1).max(100),
  scopes: z.array(ScopeSchema).min(1),
  expiresIn: Duration.optional().describe('lifetime (default: never expires)'),
});

// ---- organizations, members, teams ------------------------------------------------

export const OrganizationSchema = z.object({
  name: z.string(),
  role: z.enum(['owner', 'member']).describe("the caller's role (administrators are owners everywhere)"),
});
export const OrganizationListSchema = list(OrganizationSchema);
export const NameBody = z.strictObject({ name: z.string().max(64) });

export const MemberSchema = z.object({ name: z.string(), owner: z.boolean() });
export const MemberListSchema = list(MemberSchema);

export const TeamPermissionSchema = z.object({ repository: z.string().describe("a full repository name, or '*' for every repository of the organization"), permission: PermissionSchema });
export const TeamSchema = z.object({ name: z.string(), members: z.array(z.string()), permissions: z.array(TeamPermissionSchema) });
export const TeamListSchema = list(z.object({ name: z.string() }));
export const TeamMemberListSchema = list(z.object({ name: z.string() }));
export const TeamPermissionListSchema = list(TeamPermissionSchema);
export const TeamPermissionBody = z.strictObject({ repository: GrantTarget, permission: PermissionOrNoneSchema });

// ---- robots -----------------------------------------------------------------------

export const RobotSchema = z.object({
  id: z.number().int(),
  login: z.string().describe('the user name to log in with: ORG+NAME'),
  description: z.string(),
  expiresAt: optionalTime,
  createdAt: time,
  disabled: z.boolean(),
  permissions: z.array(z.object({ repository: z.string(), permission: PermissionSchema })),
});
export const RobotListSchema = list(RobotSchema);
export const NewRobotSchema = RobotSchema.extend({ secret: z.string().describe('shown once') });
export const RobotBody = z.strictObject({
  name: z.string().max(64),
  description: z.string().max(500).optional(),
  expiresIn: Duration.optional(),
  permissions: z.array(z.strictObject({ repository: GrantTarget, permission: PermissionSchema })).max(1000).default([]),
});
export const RobotDeleteQuery = z.strictObject({ purge: z.enum(['true', 'false']).optional().describe('true: delete the robot; otherwise it is disabled and stays listed') });

// ---- repositories -------------------------------------------------------------------

export const RepositorySummarySchema = z.object({ name: z.string(), visibility: VisibilitySchema, tags: z.number().int(), createdAt: time });
export const RepositoryListSchema = list(RepositorySummarySchema);
export const RepositoryListQuery = PageQuery.extend({ namespace: NamespaceName.optional().describe('only repositories of this namespace (a user or organization)') });
export const RepositorySchema = z.object({
  name: z.string(),
  namespace: z.string(),
  owner: z.object({ name: z.string(), kind: z.enum(['user', 'org']) }).nullable().describe('null: administrators own it (library/ and names that are no account)'),
  visibility: VisibilitySchema,
  createdAt: time,
  tags: z.number().int(),
  blobs: z.number().int(),
  sizeBytes: z.number().int(),
  permission: z.enum(['read', 'write', 'admin']).describe("the caller's permission"),
});
export const RepositoryPatchBody = z.strictObject({ visibility: VisibilitySchema });
export const RepositoryDeletedSchema = z.object({ repository: z.string(), manifestsDeleted: z.number().int(), tagsDeleted: z.number().int() });
export const CollaboratorSchema = z.object({ name: z.string(), permission: PermissionSchema });
export const CollaboratorListSchema = list(CollaboratorSchema);
export const CollaboratorBody = z.strictObject({ permission: PermissionSchema });

// ---- invitations, audit ------------------------------------------------------------

export const InvitationBody = z.strictObject({
  email: z.string().max(254).nullable().optional(),
  organization: z.string().max(64).optional().describe('required unless an administrator invites: an organization the caller owns (recorded in the audit log)'),
  expiresIn: Duration.optional().describe('default 7d'),
});
export const InvitationSchema = z.object({ code: z.string().describe('shown once: the invitation field of a registration'), expiresAt: time });

const isoOrMs = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(parseTime(s)), 'must be a time: milliseconds since the epoch or an ISO 8601 date')
  .describe('milliseconds since the epoch, or an ISO 8601 date (2024-05-01T12:00:00Z)');

export function parseTime(s: string): number {
  return /^\d{1,15}$/.test(s) ? Number(s) : Date.parse(s);
}

export const AuditQuery = PageQuery.extend({
  actor: z.string().max(200).optional(),
  action: z.string().max(100).optional().describe('e.g. login.failed, token.create'),
  target: z.string().max(300).optional(),
  since: isoOrMs.optional().describe('entries at or after this time'),
  until: isoOrMs.optional().describe('entries before this time'),
});
export const AuditEntrySchema = z.object({
  id: z.number().int(),
  at: time,
  actor: z.string().nullable().describe('null: the command line or the system'),
  action: z.string(),
  target: z.string().nullable(),
  requestId: z.string().nullable(),
  client: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});
export const AuditListSchema = list(AuditEntrySchema);

export const EmptyQuery = z.strictObject({});

// ---- discovery: search, repository pages, stars, follows, activity, webhooks ------------

/** The discovery domain answers pages of at most 100 entries. */
export const MAX_DISCOVERY_PAGE = 100;
export const DEFAULT_DISCOVERY_PAGE = 25;

/** Pagination of the discovery lists: the same `?n=&last=`, with the domain's page bound. */
export const DiscoveryPageQuery = z.strictObject({
  n: z.coerce.number().int().min(1).max(MAX_DISCOVERY_PAGE).default(DEFAULT_DISCOVERY_PAGE).describe(`entries per page, 1 to ${MAX_DISCOVERY_PAGE} (default ${DEFAULT_DISCOVERY_PAGE})`),
  last: z.string().min(1).max(300).optional().describe("the previous answer's `next` (as in the Link header's next URL)"),
});

const isoTime = z.string().describe('ISO 8601');
const optionalIso = isoTime.nullable();
const countedList = <T extends z.ZodType>(item: T) =>
  z.object({
    count: z.number().int().describe('entries in all (for search: the matches the caller may read, at most about a thousand)'),
    items: z.array(item),
    next: z.string().nullable().describe("the `last` to ask for the next page (a position in the ordering); null on the last page"),
  });

const boolText = z.enum(['true', 'false']).transform((v) => v === 'true');

export const SearchQuery = DiscoveryPageQuery.extend({
  q: z.string().max(200).default('').describe('words to look for in names, namespaces, descriptions and READMEs; empty lists everything readable'),
  namespace: NamespaceName.optional().describe('only repositories of this namespace'),
  official: boolText.optional().describe('true: only official repositories; false: only others'),
  min_stars: z.coerce.number().int().min(0).max(1_000_000_000).optional().describe('at least this many stars'),
  os: z.string().min(1).max(64).optional().describe('with a tagged image for this OS (linux, windows…)'),
  architecture: z.string().min(1).max(64).optional().describe('with a tagged image for this architecture (amd64, arm64…)'),
  variant: z.string().min(1).max(64).optional().describe('with a tagged image of this architecture variant (v7, v8…)'),
  sort: z.enum(['relevance', 'stars', 'pulls', 'updated']).default('relevance').describe('relevance (how the words match, then stars, then recent pulls), stars, pulls or updated (last push)'),
});

export const SearchResultSchema = z.object({
  name: z.string().describe('the full name: NAMESPACE/NAME'),
  namespace: z.string(),
  short_name: z.string(),
  description: z.string(),
  star_count: z.number().int(),
  pull_count: z.number().int(),
  is_official: z.boolean(),
  last_updated: optionalIso.describe('the last push'),
  last_pulled: optionalIso,
  platforms: z
    .array(z.object({ os: z.string(), architecture: z.string(), variant: z.string().nullable() }))
    .describe("the platforms of the repository's tagged images (an index's children, or the image's own), each once"),
});
export const SearchListSchema = countedList(SearchResultSchema).extend({ query: z.string() });

/** Docker Hub's repository fields (v2/repositories/NS/NAME/) beside Berth's own. */
const RepositoryPageFields = {
  repository_type: z.literal('image'),
  status: z.literal(1),
  status_description: z.literal('active'),
  description: z.string().describe('the short description (at most 100 characters)'),
  is_private: z.boolean(),
  is_official: z.boolean(),
  star_count: z.number().int(),
  pull_count: z.number().int().describe('manifest GETs by clients, counted as Docker Hub counts pulls'),
  last_updated: optionalIso.describe('the last push, else the last change'),
  last_pushed: optionalIso,
  last_pulled: optionalIso,
  date_registered: isoTime,
  full_description: z.string().describe('the README, Markdown as set'),
  full_description_html: z.string().describe('the README rendered as safe HTML: no raw HTML, no script, no event handlers, no javascript: links'),
  full_name: z.string(),
  has_starred: z.boolean().describe('whether the caller starred it (false for anonymous callers)'),
};
export const RepositoryPageSchema = RepositorySchema.extend(RepositoryPageFields).describe('`name` is the full name here, as in the rest of this API (Docker Hub answers the short name: `full_name` minus `namespace/`)');

export const TagSchema = z.object({
  name: z.string(),
  digest: z.string(),
  media_type: z.string(),
  full_size: z.number().int().nullable().describe("compressed bytes: the config and layers, or an index's images together; null for images pushed before this was recorded"),
  last_updated: isoTime.describe('when the tag was last pushed or moved'),
  last_pulled: optionalIso,
  tag_status: z.literal('active'),
  images: z.array(
    z.object({
      architecture: z.string(),
      os: z.string(),
      variant: z.string().nullable(),
      digest: z.string(),
      size: z.number().int(),
      status: z.literal('active'),
      last_pulled: optionalIso,
    }),
  ),
});
export const TagListSchema = countedList(TagSchema);
export const TagListQuery = DiscoveryPageQuery.extend({
  sort: z.enum(['name', 'updated', 'pulled']).default('updated').describe('name, updated (last push first) or pulled (last pulled first)'),
  filter: z.string().min(1).max(128).optional().describe('only tags whose name contains this'),
});

export const DescriptionBody = z.strictObject({
  description: z
    .string()
    .refine((s) => [...s].length <= MAX_DESCRIPTION_CHARS, `at most ${MAX_DESCRIPTION_CHARS} characters`)
    .describe(`at most ${MAX_DESCRIPTION_CHARS} characters; empty clears it (the image's own shows again)`),
});
export const ReadmeBody = z.strictObject({
  readme: z
    .string()
    .refine((s) => Buffer.byteLength(s) <= MAX_README_BYTES, `at most ${MAX_README_BYTES} bytes of UTF-8`)
    .describe(`Markdown, at most ${MAX_README_BYTES} bytes; empty clears it (a README attached to the image shows again)`),
});
export const OfficialBody = z.strictObject({ official: z.boolean() });

export const StarListSchema = list(z.object({ name: z.string(), starredAt: time }));

export const FollowSchema = z.object({ kind: z.enum(['account', 'repository']), target: z.string().describe('a namespace (user, organization or library) or a repository'), since: time });
export const FollowListSchema = list(FollowSchema);

export const ActivityEntrySchema = z.object({
  id: z.number().int(),
  at: time,
  repository: z.string().nullable(),
  namespace: z.string(),
  actor: z.string().nullable().describe('null: the command line, the system, or an anonymous push'),
  action: z.string().describe('push, tag, delete, visibility, permission, star, unstar, description, readme, official'),
  tag: z.string().nullable(),
  digest: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});
export const ActivityListSchema = list(ActivityEntrySchema);

const WebhookEvents = z.array(z.enum(['push'])).min(1).describe('what triggers it: push (a push with a tag)');
const WebhookUrl = z
  .string()
  .max(2000)
  .refine((s) => {
    try {
      return ['http:', 'https:'].includes(new URL(s).protocol);
    } catch {
      return false;
    }
  }, 'must be an http or https URL');
export const WebhookSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  url: z.string().describe('the URL, with the password of its user part and the values of its query parameters shown as ***'),
  events: z.array(z.string()),
  active: z.boolean(),
  createdBy: z.string().nullable(),
  createdAt: time,
});
export const WebhookListSchema = list(WebhookSchema);
export const WebhookBody = z.strictObject({
  name: z.string().regex(/^[\w .-]{1,100}$/, 'must be 1 to 100 letters, digits, spaces, ".", "_" or "-"'),
  url: WebhookUrl,
  events: WebhookEvents.optional().describe('default: push'),
});
export const WebhookPatchBody = z.strictObject({ url: WebhookUrl.optional(), events: WebhookEvents.optional(), active: z.boolean().optional() });
export type DiscoveryPage = z.output<typeof DiscoveryPageQuery>;
/** A README's JSON body: the README (at most 1 MiB) escaped, with room to spare. */
export const README_BODY_BYTES = 2 * MAX_README_BYTES;
