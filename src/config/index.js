export { loadConfig, parseAddr, ConfigError } from './config.js';
export { applyEnvOverrides } from './env.js';
