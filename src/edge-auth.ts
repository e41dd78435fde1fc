/**
 * With accounts or token auth: the edge's authentication and access
 * decision, and (accounts) the Hub's token endpoint. A module of its own,
 * loaded by createServerApp only when one of them is configured.
 */
import type { App } from './app.js';
import { ExternalTokenValidator, KeyRing, TokenEndpoint, TokenIssuer, TokenVerifier } from './auth/token/index.js';
import type { Config } from './config/index.js';
import { canonicalRepositoryName, createHub, type Hub } from './hub/index.js';
import { AccountsAuthenticator, ExternalTokenAuthenticator } from './http/authenticate.js';
import { cachedFacts, EdgeAccess } from './http/authorize.js';
import type { EdgeServices } from './http/server.js';
import { auditTokenEvents, createTokenRoutes } from './http/token.js';
import { CredentialQueries } from './metadata/credentials.js';
import { SigningKeyQueries } from './metadata/keys.js';

export interface EdgeAuth {
  access?: EdgeServices['access'];
  token?: EdgeServices['token'];
  hub?: Hub;
  tokens?: { keys: KeyRing; issuer: TokenIssuer; verifier: TokenVerifier };
}

export async function createEdgeAuth(config: Config, app: App): Promise<EdgeAuth> {
  const a = config.auth.accounts;
  if (a) {
    // The request id reaches the Hub's audit log as an argument: an AsyncLocalStorage would turn on
    // async_hooks for every promise of every later request (20-40% more CPU per small request in the bench).
    const hub = createHub(app.meta, {
      registration: a.registration,
      defaultVisibility: a.defaultvisibility,
      anonymousPull: a.anonymouspull,
      refreshLifetimeMs: a.refreshlifetime,
    });
    const keys = await KeyRing.open(new SigningKeyQueries(app.meta));
    const issuer = new TokenIssuer({ keys, issuer: a.issuer, service: a.service, lifetimeMs: a.tokenlifetime });
    const verifier = new TokenVerifier({ keys, issuer: a.issuer, service: a.service, status: hub.status });
    const authenticator = new AccountsAuthenticator({ tokens: verifier, credentials: hub.verifier, status: hub.status });
    // A revocation, a disabled account or a new password, here or on another replica, ends what was cached of it (docs/scale.md).
    app.meta.signals.subscribe('credentials', () => {
      verifier.forgetStatuses();
      authenticator.forget();
    });
    app.meta.signals.subscribe('keys', () => keys.invalidate());
    const endpoint = new TokenEndpoint({
      service: a.service,
      issuer,
      credentials: hub.verifier,
      granter: hub.granter,
      refreshTokens: hub.refreshTokens,
      onEvent: auditTokenEvents(new CredentialQueries(app.meta), app.log),
      canonicalName: canonicalRepositoryName,
    });
    return {
      access: {
        authenticator,
        control: new EdgeAccess({ mode: 'accounts', service: a.service, realm: a.realm, facts: cachedFacts(app.meta, hub.facts), policy: { anonymousPull: a.anonymouspull } }),
        canonicalName: canonicalRepositoryName,
      },
      token: createTokenRoutes({ endpoint, keys }),
      hub,
      tokens: { keys, issuer, verifier },
    };
  }
  const t = config.auth.token;
  if (t) {
    const validator = await ExternalTokenValidator.load(t);
    return {
      access: {
        authenticator: new ExternalTokenAuthenticator(validator),
        control: new EdgeAccess({ mode: 'token', service: t.service, realm: t.realm, policy: { anonymousPull: false } }),
      },
    };
  }
  return {};
}
