import { loadProtocolSuites } from './protocol/all.js';

// The whole protocol suite again, against `berth serve` running as a real
// process (the in-process run shares its code path; this one proves the CLI,
// config loading and process lifecycle give the same answers).
process.env.BERTH_TARGET = 'process';
await loadProtocolSuites();
