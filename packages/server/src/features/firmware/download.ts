import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Firmware downloads that hold up (issue 14, item 4): per-device signed links, and the HTTP
 * conditional/range rules the download route applies. Pure functions; the route streams.
 */

/** How long a link from get_firmware_info stays valid. A resumed request after this asks again. */
export const DOWNLOAD_LINK_TTL_SEC = 3600;

export interface SignedLink {
  sn: string;
  /** Expiry, Unix seconds. */
  exp: number;
  sig: string;
}

function mac(key: Buffer, firmwareId: string, sn: string, exp: number): string {
  // Newline-separated: neither an id, an SN nor a number holds one, so fields cannot be shifted.
  return createHmac('sha256', key).update(`fw-download\n${firmwareId}\n${sn}\n${exp}`).digest('base64url');
}

export function signLink(key: Buffer, firmwareId: string, sn: string, nowMs: number, ttlSec = DOWNLOAD_LINK_TTL_SEC): SignedLink {
  const exp = Math.floor(nowMs / 1000) + ttlSec;
  return { sn, exp, sig: mac(key, firmwareId, sn, exp) };
}

export function linkQuery(l: SignedLink): string {
  return `sn=${encodeURIComponent(l.sn)}&exp=${l.exp}&sig=${l.sig}`;
}

/** 'ok' | why the link is refused. */
export function verifyLink(
  key: Buffer,
  firmwareId: string,
  q: { sn?: string; exp?: string; sig?: string },
  nowMs: number,
): 'ok' | 'forged' | 'expired' {
  if (typeof q.sn !== 'string' || typeof q.sig !== 'string' || typeof q.exp !== 'string' || !/^\d{1,12}$/.test(q.exp)) {
    return 'forged';
  }
  const exp = Number(q.exp);
  const want = Buffer.from(mac(key, firmwareId, q.sn, exp));
  const got = Buffer.from(q.sig);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'forged';
  // Checked after the MAC so an expired link tells nothing about forged ones.
  if (exp * 1000 < nowMs) return 'expired';
  return 'ok';
}

/** A strong validator: a firmware id's bytes never change, and its MD5 is known. */
export function etagOf(md5: string): string {
  return `"${md5}"`;
}

/** If-None-Match: a weak comparison over the listed tags, or `*`. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * RFC 9110 §14: one byte range is served as 206. Several ranges are answered with the whole file
 * (allowed: a server may ignore Range), as are syntactically invalid ones. If-Range must match the
 * strong ETag (or be a date not older than the file), else the whole file is sent.
 */
export function decideRange(
  range: string | undefined,
  ifRange: string | undefined,
  size: number,
  etag: string,
  lastModifiedMs: number,
): RangeDecision {
  if (!range) return { kind: 'full' };
  if (ifRange !== undefined && !ifRangeMatches(ifRange, etag, lastModifiedMs)) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  }
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

function ifRangeMatches(ifRange: string, etag: string, lastModifiedMs: number): boolean {
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === etag; // weak tags never match If-Range
  const t = Date.parse(v);
  return Number.isFinite(t) && Math.floor(lastModifiedMs / 1000) * 1000 <= t;
}

/**
 * The bytes of recently downloaded firmware files, held in memory. During a campaign thousands of
 * devices fetch the same few images; serving them from one Buffer (a slice per range, no copy) skips
 * the page-cache → user-space read and the per-chunk buffers a file stream allocates, which were
 * most of a download's CPU (bench:firmware-download). Safe because a firmware id's bytes never
 * change. Files over `maxFileBytes` are streamed from disk instead; least recently used files leave
 * first once `maxTotalBytes` is reached. Each process holds its own.
 */
export class FirmwareBytesCache {
  private readonly entries = new Map<string, Promise<Buffer | null>>();
  private readonly sizes = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly readFile: (path: string) => Promise<Buffer>,
    readonly maxFileBytes = 32 * 2 ** 20,
    readonly maxTotalBytes = 128 * 2 ** 20,
  ) {}

  /**
   * The file's bytes, or null when it is too large to hold (stream it) or could not be read as
   * `size` bytes. Concurrent first requests share one read.
   */
  get(id: string, path: string, size: number): Promise<Buffer | null> {
    if (size > this.maxFileBytes || size > this.maxTotalBytes) return Promise.resolve(null);
    const hit = this.entries.get(id);
    if (hit) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.entries.delete(id);
      this.entries.set(id, hit);
      return hit;
    }
    // A failed or short read is not kept (unless a newer read of the same id replaced it).
    const drop = () => {
      if (this.entries.get(id) === load) this.forget(id);
      return null;
    };
    const load: Promise<Buffer | null> = this.readFile(path).then((b) => (b.length === size ? b : drop()), drop);
    this.entries.set(id, load);
    this.sizes.set(id, size);
    this.total += size;
    for (const old of this.entries.keys()) {
      if (this.total <= this.maxTotalBytes) break;
      if (old !== id) this.forget(old);
    }
    return load;
  }

  /** Bytes held (or being read), for tests. */
  get heldBytes(): number {
    return this.total;
  }

  private forget(id: string): void {
    if (!this.entries.delete(id)) return;
    this.total -= this.sizes.get(id) ?? 0;
    this.sizes.delete(id);
  }
}
