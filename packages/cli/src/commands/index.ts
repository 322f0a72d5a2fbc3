// One line per command group: a group is a file exporting `register(program, ctx)`. Groups are
// registered (and listed in --help) in alphabetical order of these names.
export * as batch from './batch.js';
export * as callbacks from './callbacks.js';
export * as config from './config.js';
export * as device from './device.js';
export * as firmware from './firmware.js';
export * as merchant from './merchant.js';
export * as migrate from './migrate.js';
export * as model from './model.js';
export * as operator from './operator.js';
export * as org from './org.js';
export * as relations from './relations.js';
export * as sim from './sim.js';
export * as vendor from './vendor.js';
