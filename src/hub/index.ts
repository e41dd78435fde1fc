/**
 * The Hub's domain, door of src/hub: accounts, organizations and teams,
 * repository visibility and collaborators, personal access tokens, robots,
 * refresh tokens, the audit log and login limits; and the token service's
 * side of the contract (CredentialVerifier, AccessGranter, RefreshTokens,
 * CredentialStatus). Nothing here knows about HTTP.
 */
import type { MetadataStore } from '../metadata/store.js';
import { AccountService } from './accounts.js';
import { AuditLog } from './audit.js';
import { DEFAULT_SETTINGS, HubContext, type HubSettings } from './context.js';
import { HubCredentialStatus, HubCredentialVerifier, Principals } from './credentials.js';
import { FactsLoader } from './facts.js';
import { HubAccessGranter } from './granter.js';
import { OrganizationService } from './organizations.js';
import { LoginLimiter } from './ratelimit.js';
import { RepositoryService } from './repositories.js';
import { AccessTokenService, HubRefreshTokens, RobotService } from './tokens.js';

export { HubError, type HubErrorCode } from './errors.js';
export { CLI, DEFAULT_SETTINGS, type Actor, type HubSettings } from './context.js';
export { accountNameProblem, canonicalRepositoryName, namespaceOf, parseRobotName } from './names.js';
export { hashPassword, verifyPassword } from './passwords.js';
export { readableCondition, whereReadable, type ReadableColumns } from './listing.js';
export type { Account } from './accounts.js';
export { createDiscovery, type Discovery, type DiscoveryOptions } from './discovery.js';
export { queryTerms, type DockerSearchResponse, type SearchPage, type SearchRequest } from './search.js';
export { renderReadme, safeUrl, MAX_README_BYTES, MAX_DESCRIPTION_CHARS } from './readme.js';
export { PullCounter } from './pulls.js';
export { webhookPayload, type WebhookInput } from './activity.js';
export type { RepositoryPage, TagPage } from './repository-pages.js';
export type { AccessTokenInfo, RobotInfo } from './tokens.js';

export interface Hub {
  settings: HubSettings;
  accounts: AccountService;
  organizations: OrganizationService;
  repositories: RepositoryService;
  tokens: AccessTokenService;
  robots: RobotService;
  refreshTokens: HubRefreshTokens;
  audit: AuditLog;
  limiter: LoginLimiter;
  facts: FactsLoader;
  verifier: HubCredentialVerifier;
  granter: HubAccessGranter;
  status: HubCredentialStatus;
}

/**
 * The Hub over a metadata store. The store must have been opened with
 * `newRepositoryVisibility: settings.defaultVisibility` for new repositories
 * to get the configured visibility.
 */
export function createHub(store: MetadataStore, settings: Partial<HubSettings> = {}, hooks: { requestId?: () => string | null } = {}): Hub {
  const full: HubSettings = { ...DEFAULT_SETTINGS, ...settings, loginLimits: { ...DEFAULT_SETTINGS.loginLimits, ...settings.loginLimits } };
  const context = new HubContext(store, full);
  const principals = new Principals(context);
  const limiter = new LoginLimiter(context);
  const facts = new FactsLoader(context);
  return {
    settings: full,
    accounts: new AccountService(context),
    organizations: new OrganizationService(context),
    repositories: new RepositoryService(context),
    tokens: new AccessTokenService(context),
    robots: new RobotService(context),
    refreshTokens: new HubRefreshTokens(context, principals),
    audit: new AuditLog(context),
    limiter,
    facts,
    // The HTTP edge tells which request a login belongs to, for the audit log.
    verifier: new HubCredentialVerifier(context, limiter, principals, hooks.requestId),
    granter: new HubAccessGranter(context, facts),
    status: new HubCredentialStatus(principals),
  };
}
