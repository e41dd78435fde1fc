import { loadProtocolSuites } from './protocol/all.js';

// The whole protocol suite again with token auth on: each server runs with
// `auth: accounts` and every request goes through the Bearer flow (a 401
// challenge, a token for the challenged scope, the request again), as the
// OCI conformance suite runs with credentials. The registry's answers must
// be the same as without auth.
process.env.BERTH_AUTH = 'accounts';
await loadProtocolSuites();
