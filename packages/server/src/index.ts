export { buildApp } from './app.js';
export { closeDeps, composeDeps } from './compose.js';
export { type Config, ConfigError, loadConfig } from './config.js';
export type { Deps } from './deps.js';
export { AppError, ERRORS, type ErrorCode } from './errors.js';
export { buildServices, type Services } from './services.js';
export type { Principal } from './shared/principal.js';
export { SYSTEM_CLI } from './shared/principal.js';
