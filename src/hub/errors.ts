/**
 * What the Hub's services refuse, as typed errors with a stable code; the
 * edge (a later wave) maps each code to a status and the one error shape.
 */
export type HubErrorCode =
  | 'NAME_INVALID'
  | 'NAME_TAKEN'
  | 'NOT_FOUND'
  | 'INVALID'
  | 'REGISTRATION_CLOSED'
  | 'INVITATION_INVALID'
  | 'LAST_OWNER'
  | 'LAST_ADMIN'
  /** an account that still owns repositories or is the last owner of an organization (detail: which) */
  | 'ACCOUNT_IN_USE'
  | 'WRONG_PASSWORD'
  /** the caller may see the thing but not change it (a reader asking to set a README) */
  | 'FORBIDDEN';

export class HubError extends Error {
  constructor(
    readonly code: HubErrorCode,
    message: string,
    /** Machine-readable detail (e.g. the repositories that block a delete). */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HubError';
  }
}
