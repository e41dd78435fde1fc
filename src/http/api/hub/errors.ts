/**
 * The JSON API's errors: one shape, the registry's `{"errors":[{"code",
 * "message","detail"}]}`, one status per code. The Hub's typed errors
 * (HubError) and the registry's (RegistryError, from a repository delete)
 * are translated here, so handlers just throw.
 */
import type { ZodError } from 'zod';
import { HubError, type HubErrorCode } from '../../../hub/index.js';
import { isRegistryError } from '../../../registry/index.js';

export const API_ERRORS = {
  /** A request body, query or path parameter that does not fit the operation's schema. */
  INVALID: { status: 400, message: 'invalid request' },
  NAME_INVALID: { status: 400, message: 'invalid name' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  REGISTRATION_CLOSED: { status: 403, message: 'registration is closed' },
  INVITATION_INVALID: { status: 403, message: 'the invitation is unknown, used or expired' },
  WRONG_PASSWORD: { status: 403, message: 'the current password is wrong' },
  /** An account, organization, team, token, robot or member that does not exist, or that the caller may not see. */
  NOT_FOUND: { status: 404, message: 'not found' },
  /** A repository that does not exist, or that the caller may not read: the same answer. */
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  NAME_TAKEN: { status: 409, message: 'the name is not available' },
  LAST_OWNER: { status: 409, message: 'the last owner of an organization cannot leave it' },
  LAST_ADMIN: { status: 409, message: 'the last administrator cannot be removed' },
  ACCOUNT_IN_USE: { status: 409, message: 'the account cannot be deleted yet' },
  TOO_LARGE: { status: 413, message: 'the request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'request bodies are JSON (Content-Type: application/json)' },
  UNKNOWN: { status: 500, message: 'unknown error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message?: string,
    readonly detail?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? API_ERRORS[code].message);
    this.name = 'ApiError';
    this.status = API_ERRORS[code].status;
  }
}

/** One entry of the `errors` array. */
export interface ErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

const HUB_CODES: Record<HubErrorCode, ApiErrorCode> = {
  NAME_INVALID: 'NAME_INVALID',
  NAME_TAKEN: 'NAME_TAKEN',
  NOT_FOUND: 'NOT_FOUND',
  INVALID: 'INVALID',
  REGISTRATION_CLOSED: 'REGISTRATION_CLOSED',
  INVITATION_INVALID: 'INVITATION_INVALID',
  LAST_OWNER: 'LAST_OWNER',
  LAST_ADMIN: 'LAST_ADMIN',
  ACCOUNT_IN_USE: 'ACCOUNT_IN_USE',
  WRONG_PASSWORD: 'WRONG_PASSWORD',
  FORBIDDEN: 'DENIED',
};

/** Status, headers and the error entry for anything a handler threw; null for what is not a known error (a 500). */
export function describeError(err: unknown): { status: number; headers: Record<string, string>; entry: ErrorEntry } | null {
  if (err instanceof ApiError) return { status: err.status, headers: err.headers, entry: entry(err.code, err.message, err.detail) };
  if (err instanceof HubError) {
    const code = HUB_CODES[err.code];
    return { status: API_ERRORS[code].status, headers: {}, entry: entry(code, err.message, err.detail) };
  }
  if (isRegistryError(err)) return { status: err.status, headers: err.headers, entry: err.toJSON() };
  return null;
}

function entry(code: string, message: string, detail: unknown): ErrorEntry {
  return detail === undefined ? { code, message } : { code, message, detail };
}

/**
 * A schema failure as one INVALID error whose message names the field
 * (`body.password: …`), and every issue in the detail.
 */
export function invalid(where: 'body' | 'query' | 'path', error: ZodError): ApiError {
  const issues = error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : [];
    const field = [where, ...i.path.map(String)].join('.');
    return { field: keys.length ? `${field}.${keys[0]}` : field, message: keys.length ? `unknown field${keys.length > 1 ? 's' : ''} ${keys.join(', ')}` : i.message };
  });
  const first = issues[0] ?? { field: where, message: 'invalid' };
  return new ApiError(where === 'path' ? 'NAME_INVALID' : 'INVALID', `${first.field}: ${first.message}`, { issues });
}

export const nameUnknown = (name: string) => new ApiError('NAME_UNKNOWN', 'repository name not known to registry', { name });
export const notFound = (what: string) => new ApiError('NOT_FOUND', `no ${what}`);
export const denied = (why: string) => new ApiError('DENIED', `requested access to the resource is denied: ${why}`);
export const unauthorized = () => new ApiError('UNAUTHORIZED', 'authentication required');
