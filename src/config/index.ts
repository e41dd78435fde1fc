export { loadConfig, parseAddr, ConfigError } from './config.js';
export type { Config, LoadedConfig } from './config.js';
export { applyEnvOverrides } from './env.js';
