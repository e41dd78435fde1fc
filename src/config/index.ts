export { loadConfig, parseConfig, parseAddr, ConfigError } from './config.js';
export type { AccountsConfig, Config, LoadedConfig, NotificationEndpoint, HealthCheckHttp } from './config.js';
export { applyEnvOverrides } from './env.js';
export { parseDuration } from './schema.js';
