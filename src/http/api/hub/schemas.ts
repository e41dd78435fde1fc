/**
 * The API's request and response shapes, described once with zod: the
 * handlers validate with them and the OpenAPI document is generated from
 * them (openapi.ts). Bodies are strict objects: a misspelt field is an
 * error, not silently ignored.
 */
import { z } from 'zod';
import { parseDuration } from '../../../config/index.js';

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
export const TeamPermissionBody = z.strictObject({ repository: z.string().min(1).max(256), permission: PermissionOrNoneSchema });

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
  permissions: z.array(z.strictObject({ repository: z.string().min(1).max(256), permission: PermissionSchema })).max(1000).default([]),
});
export const RobotDeleteQuery = z.strictObject({ purge: z.enum(['true', 'false']).optional().describe('true: delete the robot; otherwise it is disabled and stays listed') });

// ---- repositories -------------------------------------------------------------------

export const RepositorySummarySchema = z.object({ name: z.string(), visibility: VisibilitySchema, tags: z.number().int(), createdAt: time });
export const RepositoryListSchema = list(RepositorySummarySchema);
export const RepositoryListQuery = PageQuery.extend({ namespace: z.string().max(256).optional().describe('only repositories of this namespace (a user or organization)') });
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
