export * from './device-link.js';
export * from './peripheral.js';
export * from './sign.js';
