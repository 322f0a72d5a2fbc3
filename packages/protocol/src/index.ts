export * from './bluetooth.js';
export * from './enums.js';
export * from './errcodes.js';
export * from './frames.js';
export * from './label-template.js';
export * from './qr.js';
export * from './sign.js';
export * from './sn.js';
