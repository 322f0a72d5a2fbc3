/**
 * Frames of the direct-access protocol (docs/protocol.md §F). Requests carry `cmd`; replies
 * never do (firmware tells them apart by that alone); pushes carry a `push_*` cmd.
 */
export interface RequestFrame {
  cmd: string;
  headers: { req_id: string };
  body?: Record<string, unknown>;
}

export interface ReplyFrame {
  headers: { req_id: string };
  body?: Record<string, unknown>;
  errcode: number;
  errmsg: string;
}

export interface PushFrame {
  cmd: string;
  headers: { req_id: string };
  body?: Record<string, unknown>;
}

/** Keys whose JSON numbers are kept as their exact decimal text (P-F-4). */
const NUMERIC_TEXT_KEYS = ['nonce', 'timestamp'];
const NUMERIC_TEXT_RE = new RegExp(`"(${NUMERIC_TEXT_KEYS.join('|')})"(\\s*):(\\s*)(-?\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)`, 'g');

/**
 * Parses a text frame, keeping `nonce`/`timestamp` numbers as their source text so a
 * 20-digit nonce never passes through a double. Escaped quotes inside strings can't match
 * the pattern because a key's closing quote must follow the name directly.
 */
export function parseFrameText(text: string): unknown {
  return JSON.parse(text.replace(NUMERIC_TEXT_RE, '"$1"$2:$3"$4"'));
}

/** A nonce or timestamp given as a JSON number or numeric string, as decimal text; null if neither. */
export function numericText(v: unknown, maxDigits = 20): string | null {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0 ? String(v) : null;
  }
  if (typeof v === 'string' && v.length <= maxDigits && /^\d+$/.test(v)) return v;
  return null;
}

export function isRequestFrame(v: unknown): v is RequestFrame {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const f = v as Record<string, unknown>;
  if (typeof f.cmd !== 'string' || f.cmd.length === 0 || f.cmd.length > 64) return false;
  const h = f.headers as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null || typeof h.req_id !== 'string') return false;
  if (f.body !== undefined && (typeof f.body !== 'object' || f.body === null || Array.isArray(f.body))) return false;
  return true;
}

// ---- Binary frames (§A1.2): 4-byte little-endian unsigned lengths (P-B-1) ----

export const BINARY_FORMAT_VERSION = 1;

export class BinaryFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BinaryFrameError';
  }
}

/** Server → device binary reply: version, req_id_len, req_id, data_len, data. */
export function encodeBinaryReply(reqId: string, data: Uint8Array): Buffer {
  const id = Buffer.from(reqId, 'utf8');
  const out = Buffer.allocUnsafe(12 + id.length + data.length);
  let o = out.writeUInt32LE(BINARY_FORMAT_VERSION, 0);
  o = out.writeUInt32LE(id.length, o);
  o += id.copy(out, o);
  o = out.writeUInt32LE(data.length, o);
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, o);
  return out;
}

export interface BinaryReply {
  formatVersion: number;
  reqId: string;
  data: Buffer;
}

export function decodeBinaryReply(buf: Buffer): BinaryReply {
  const r = new Reader(buf);
  const formatVersion = r.u32('format_version');
  const reqId = r.bytes(r.u32('req_id_len'), 'req_id').toString('utf8');
  const data = r.bytes(r.u32('data_len'), 'data');
  r.end();
  return { formatVersion, reqId, data };
}

/** Device → server binary request: version, cmd_len, cmd, req_id_len, req_id, data_len, data. */
export function encodeBinaryRequest(cmd: string, reqId: string, data: Uint8Array): Buffer {
  const c = Buffer.from(cmd, 'ascii');
  const id = Buffer.from(reqId, 'utf8');
  const out = Buffer.allocUnsafe(16 + c.length + id.length + data.length);
  let o = out.writeUInt32LE(BINARY_FORMAT_VERSION, 0);
  o = out.writeUInt32LE(c.length, o);
  o += c.copy(out, o);
  o = out.writeUInt32LE(id.length, o);
  o += id.copy(out, o);
  o = out.writeUInt32LE(data.length, o);
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, o);
  return out;
}

export interface BinaryRequest {
  formatVersion: number;
  cmd: string;
  reqId: string;
  data: Buffer;
}

export function decodeBinaryRequest(buf: Buffer, limits = { maxCmd: 64, maxReqId: 256 }): BinaryRequest {
  const r = new Reader(buf);
  const formatVersion = r.u32('format_version');
  if (formatVersion !== BINARY_FORMAT_VERSION) {
    throw new BinaryFrameError(`unsupported format_version ${formatVersion}`);
  }
  const cmdLen = r.u32('cmd_len');
  if (cmdLen === 0 || cmdLen > limits.maxCmd) throw new BinaryFrameError(`cmd_len ${cmdLen} out of range`);
  const cmd = r.bytes(cmdLen, 'cmd').toString('ascii');
  const idLen = r.u32('req_id_len');
  if (idLen > limits.maxReqId) throw new BinaryFrameError(`req_id_len ${idLen} out of range`);
  const reqId = r.bytes(idLen, 'req_id').toString('utf8');
  const data = r.bytes(r.u32('data_len'), 'data');
  r.end();
  return { formatVersion, cmd, reqId, data };
}

class Reader {
  private o = 0;
  constructor(private readonly buf: Buffer) {}
  u32(field: string): number {
    if (this.o + 4 > this.buf.length) throw new BinaryFrameError(`truncated frame: missing ${field}`);
    const v = this.buf.readUInt32LE(this.o);
    this.o += 4;
    return v;
  }
  bytes(n: number, field: string): Buffer {
    if (this.o + n > this.buf.length) {
      throw new BinaryFrameError(`truncated frame: ${field} wants ${n} bytes, ${this.buf.length - this.o} left`);
    }
    const b = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return b;
  }
  end(): void {
    if (this.o !== this.buf.length) throw new BinaryFrameError(`${this.buf.length - this.o} trailing bytes`);
  }
}
