import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * The outbound request policy (issue 11, finding 5): every HTTP request the server makes on
 * someone's behalf (vendor callbacks, verify_device, webhooks) is checked here, so a vendor or an
 * organisation admin cannot point the server at itself, its network or the cloud metadata service.
 * An operator may permit internal targets with BINDERY_OUTBOUND_ALLOW (CIDRs).
 */

export type Family = 4 | 6;
export interface ResolvedAddress {
  address: string;
  family: Family;
}
/** Resolves a host name to every address (the seam a test replaces to play DNS rebinding). */
export type LookupAll = (hostname: string) => Promise<ResolvedAddress[]>;

export interface Cidr {
  address: string;
  prefix: number;
  family: Family;
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128); null when it is not one. */
export function parseCidr(text: string): Cidr | null {
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined || !addr) return null;
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address: addr, prefix, family };
}

/** Why a URL is refused; `reason` is safe to show to whoever set the URL (it names no resolved address). */
export class OutboundRefusedError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'OutboundRefusedError';
  }
}

/** The host name does not resolve (not a refusal: it may resolve later). */
export class OutboundUnresolvedError extends Error {
  constructor() {
    super('the host name does not resolve');
    this.name = 'OutboundUnresolvedError';
  }
}

/** Address ranges no outbound request may reach unless allowed; grouped so a refusal can say why. */
const REFUSED: Array<{ reason: string; v4?: string[]; v6?: string[] }> = [
  { reason: 'a loopback address', v4: ['127.0.0.0/8'], v6: ['::1/128'] },
  { reason: 'an unspecified address', v4: ['0.0.0.0/8'], v6: ['::/128'] },
  { reason: 'a private address', v4: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] },
  { reason: 'a shared (CGNAT) address', v4: ['100.64.0.0/10'] },
  { reason: 'a link-local address', v4: ['169.254.0.0/16'], v6: ['fe80::/10'] },
  { reason: 'a unique-local address', v6: ['fc00::/7', 'fec0::/10'] },
  { reason: 'a multicast address', v4: ['224.0.0.0/4'], v6: ['ff00::/8'] },
  {
    reason: 'a reserved address',
    v4: ['192.0.0.0/24', '192.88.99.0/24', '240.0.0.0/4', '198.18.0.0/15', '192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'],
    // IETF assignments (Teredo, benchmarking, ORCHID), documentation, discard-only, 6to4, local NAT64.
    v6: ['2001::/23', '2001:db8::/32', '3fff::/20', '100::/64', '2002::/16', '64:ff9b:1::/48'],
  },
  // IPv4-compatible (::a.b.c.d): deprecated, never needed for a public target.
  { reason: 'an IPv4-compatible IPv6 address', v6: ['::/96'] },
];

/**
 * IPv4-mapped (::ffff:a.b.c.d), a classic way to spell 127.0.0.1 past a v6-only check. Checked for
 * IPv6 addresses only: net.BlockList matches every IPv4 address against a ::ffff:0:0/96 rule.
 */
const MAPPED = blockOf([parseCidr('::ffff:0:0/96')!]);

/** Names that only mean something inside a network; refused unless all they resolve to is allowed. */
function internalName(host: string): boolean {
  if (!host.includes('.')) return true; // single-label: a container, a search-domain name
  return /(^|\.)(localhost|local|internal|home\.arpa|localdomain|intranet|lan)$/.test(host);
}

function blockOf(cidrs: Cidr[]): BlockList {
  const b = new BlockList();
  for (const c of cidrs) b.addSubnet(c.address, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return b;
}

const REFUSED_BLOCKS = REFUSED.map((r) => {
  const cidrs = [...(r.v4 ?? []), ...(r.v6 ?? [])].map((t) => parseCidr(t)!);
  return { reason: r.reason, block: blockOf(cidrs) };
});

/**
 * NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits, and that is what gets reached:
 * each refused IPv4 range is refused again inside the NAT64 prefix (a.b.c.d/p → 64:ff9b::a.b.c.d/96+p).
 */
const NAT64_BLOCKS = REFUSED.filter((r) => r.v4).map((r) => ({
  reason: `a NAT64 address embedding ${r.reason}`,
  block: blockOf(
    r.v4!.map((t) => {
      const c = parseCidr(t)!;
      return { address: `64:ff9b::${c.address}`, prefix: 96 + c.prefix, family: 6 as const };
    }),
  ),
}));

export interface OutboundPolicyOptions {
  /** BINDERY_OUTBOUND_ALLOW: ranges an operator permits although the policy refuses them. */
  allow?: Cidr[];
  lookup?: LookupAll;
}

/** An address a request may connect to, with the URL it was checked for. */
export interface CheckedTarget {
  url: URL;
  /** The host without IPv6 brackets. */
  host: string;
  address: string;
  family: Family;
}

const defaultLookup: LookupAll = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family as Family }));

export class OutboundPolicy {
  private readonly allow: BlockList;
  private readonly lookup: LookupAll;

  constructor(opts: OutboundPolicyOptions = {}) {
    this.allow = blockOf(opts.allow ?? []);
    this.lookup = opts.lookup ?? defaultLookup;
  }

  /** Why this address may not be reached, or null when it may. */
  refusal(address: string): string | null {
    const family = isIP(address);
    if (family !== 4 && family !== 6) return 'not an IP address';
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allow.check(address, type)) return null;
    for (const r of REFUSED_BLOCKS) if (r.block.check(address, type)) return r.reason;
    if (family === 6 && MAPPED.check(address, 'ipv6')) return 'an IPv4-mapped IPv6 address';
    if (family === 6) for (const r of NAT64_BLOCKS) if (r.block.check(address, type)) return r.reason;
    return null;
  }

  /** The URL's syntax alone: http(s), no credentials, a host. Returns the parsed URL. */
  parse(raw: string): URL {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new OutboundRefusedError('the URL is not an absolute URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OutboundRefusedError('the URL must use http or https');
    if (u.username || u.password) throw new OutboundRefusedError('the URL must not carry a user name or password');
    if (!u.hostname) throw new OutboundRefusedError('the URL has no host');
    return u;
  }

  /**
   * Checks a URL for sending: every address its host resolves to must be permitted (one refused
   * address refuses the URL, so a name cannot mix a public and an internal address). Returns the
   * address to connect to; the caller must connect to exactly that one.
   */
  async check(raw: string): Promise<CheckedTarget> {
    const url = this.parse(raw);
    // WHATWG parsing already turned 2130706433, 0x7f000001, 0177.0.0.1 and 127.1 into 127.0.0.1.
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const literal = isIP(host);
    if (literal === 4 || literal === 6) {
      const why = this.refusal(host);
      if (why) throw new OutboundRefusedError(`the host is ${why}`);
      return { url, host, address: host, family: literal };
    }
    const name = host.replace(/\.$/, '');
    let addresses: ResolvedAddress[];
    try {
      addresses = await this.lookup(name);
    } catch {
      addresses = [];
    }
    if (addresses.length === 0) {
      if (internalName(name)) throw new OutboundRefusedError('the host is an internal name');
      throw new OutboundUnresolvedError();
    }
    for (const a of addresses) {
      const why = this.refusal(a.address);
      // The reason names the kind of address, never the address: the name may be an internal one.
      if (why)
        throw new OutboundRefusedError(internalName(name) ? 'the host is an internal name' : `the host resolves to ${why}`);
    }
    const first = addresses[0]!;
    return { url, host, address: first.address, family: first.family };
  }

  /**
   * The check when a URL is saved: refused URLs are refused; a name that does not resolve (yet)
   * is accepted, since every send checks again.
   */
  async checkForSave(raw: string): Promise<URL> {
    try {
      return (await this.check(raw)).url;
    } catch (e) {
      if (e instanceof OutboundUnresolvedError) return this.parse(raw);
      throw e;
    }
  }
}
