export {
  BinaryFrameError,
  type BinaryReply,
  type BinaryRequest,
  decodeBinaryReply,
  decodeBinaryRequest,
  encodeBinaryReply,
  encodeBinaryRequest,
  RESTART_FLOW_CODES,
  WsErr,
} from '@bindery/protocol';
export * from './backoff.js';
export * from './bluetooth/index.js';
export * from './device.js';
export * from './events.js';
export * from './qr.js';
export * from './time.js';
export * from './transport.js';
export * from './upgrade.js';
