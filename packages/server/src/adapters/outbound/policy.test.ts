import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { outboundRequest } from './client.js';
import { type LookupAll, OutboundPolicy, OutboundRefusedError, OutboundUnresolvedError, parseCidr } from './policy.js';

// Issue 11, finding 5: the outbound policy's tables.

const REFUSED_ADDRESSES: Array<[string, RegExp]> = [
  ['127.0.0.1', /loopback/],
  ['127.255.255.254', /loopback/],
  ['::1', /loopback/],
  ['0.0.0.0', /unspecified/],
  ['0.1.2.3', /unspecified/],
  ['::', /unspecified/],
  ['10.0.0.5', /private/],
  ['172.16.0.1', /private/],
  ['172.31.255.255', /private/],
  ['192.168.1.1', /private/],
  ['100.64.0.1', /CGNAT/],
  ['100.127.255.254', /CGNAT/],
  ['169.254.169.254', /link-local/],
  ['fe80::1', /link-local/],
  ['fc00::1', /unique-local/],
  ['fd12:3456::1', /unique-local/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.250', /multicast/],
  ['ff02::1', /multicast/],
  ['255.255.255.255', /reserved/],
  ['240.0.0.1', /reserved/],
  ['192.0.0.8', /reserved/],
  ['192.0.2.10', /reserved/],
  ['198.18.0.1', /reserved/],
  ['198.51.100.7', /reserved/],
  ['203.0.113.9', /reserved/],
  ['2001:db8::1', /reserved/],
  ['2001::1', /reserved/], // Teredo
  ['2002:7f00:1::1', /reserved/], // 6to4 of 127.0.0.1
  ['::ffff:127.0.0.1', /loopback/],
  ['::ffff:10.0.0.5', /private/],
  ['::ffff:8.8.8.8', /IPv4-mapped/],
  ['::127.0.0.1', /IPv4-compatible/],
  ['64:ff9b::127.0.0.1', /NAT64 address embedding a loopback/],
  ['64:ff9b::a00:5', /NAT64 address embedding a private/],
  ['64:ff9b::169.254.169.254', /NAT64 address embedding a link-local/],
];

const PUBLIC_ADDRESSES = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.32.0.1',
  '100.128.0.1',
  '2606:4700::1111',
  '64:ff9b::808:808',
];

/** Every spelling of an internal target a URL can carry; WHATWG parsing normalises the numeric ones. */
const REFUSED_URLS = [
  'http://127.0.0.1/',
  'http://0.0.0.0/',
  'http://2130706433/',
  'http://0x7f000001/',
  'http://0177.0.0.1/',
  'http://017700000001/',
  'http://127.1/',
  'http://0x7f.1/',
  'http://[::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:7f00:1]/',
  'http://[0:0:0:0:0:ffff:127.0.0.1]/',
  'http://[64:ff9b::10.0.0.5]/',
  'http://169.254.169.254/latest/meta-data/',
  'https://10.0.0.5:6379/',
  'http://localhost/',
  'http://LOCALHOST./',
  'http://api.localhost/',
  'http://metadata.google.internal/computeMetadata/v1/',
  'http://metadata/',
  'ftp://example.com/',
  'file:///etc/passwd',
  'http://user:pw@example.com/',
  'not a url',
];

/** A resolver from a table, so names resolve the same everywhere. */
function table(entries: Record<string, string[]>): LookupAll {
  return async (name) => {
    const list = entries[name];
    if (!list) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

const dns = table({
  localhost: ['127.0.0.1', '::1'],
  'api.localhost': ['127.0.0.1'],
  'vendor.example': ['93.184.216.34'],
  'internal.example': ['10.1.2.3'],
  'mixed.example': ['93.184.216.34', '10.1.2.3'],
  'v6.example': ['2606:4700::1111'],
  'nat64.example': ['64:ff9b::7f00:1'],
});

describe('outbound policy (finding 5)', () => {
  const p = new OutboundPolicy({ lookup: dns });

  it.each(REFUSED_ADDRESSES)('refuses %s', (address, why) => {
    expect(p.refusal(address)).toMatch(why);
  });

  it.each(PUBLIC_ADDRESSES)('permits the public address %s', (address) => {
    expect(p.refusal(address)).toBeNull();
  });

  it.each(REFUSED_URLS)('refuses the URL %s', async (url) => {
    await expect(p.check(url)).rejects.toBeInstanceOf(OutboundRefusedError);
  });

  it('refuses names that resolve to any refused address, without naming the address', async () => {
    for (const name of ['internal.example', 'mixed.example', 'nat64.example']) {
      const e = await p.check(`https://${name}/hook`).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OutboundRefusedError);
      expect((e as Error).message).toMatch(/resolves to (a private|a NAT64)/);
      expect((e as Error).message).not.toMatch(/10\.1\.2\.3|7f00/);
    }
  });

  it('permits public names and gives the address to connect to', async () => {
    expect(await p.check('https://vendor.example/cb?x=1')).toMatchObject({
      host: 'vendor.example',
      address: '93.184.216.34',
      family: 4,
    });
    expect(await p.check('http://v6.example:8080/')).toMatchObject({ address: '2606:4700::1111', family: 6 });
    expect(await p.check('https://8.8.8.8/')).toMatchObject({ address: '8.8.8.8' });
  });

  it('a name that does not resolve is not refused at save (it is checked again at every send)', async () => {
    await expect(p.check('https://nowhere.example/')).rejects.toBeInstanceOf(OutboundUnresolvedError);
    expect((await p.checkForSave('https://nowhere.example/')).hostname).toBe('nowhere.example');
    await expect(p.checkForSave('http://nowhere.internal/')).rejects.toBeInstanceOf(OutboundRefusedError);
  });

  it('BINDERY_OUTBOUND_ALLOW ranges permit what they name, and only that', async () => {
    const allowed = new OutboundPolicy({ lookup: dns, allow: [parseCidr('127.0.0.1')!, parseCidr('10.0.0.0/8')!] });
    expect(allowed.refusal('127.0.0.1')).toBeNull();
    expect(allowed.refusal('::ffff:127.0.0.1')).toBeNull();
    expect(allowed.refusal('10.200.0.1')).toBeNull();
    expect(allowed.refusal('127.0.0.2')).toMatch(/loopback/);
    expect(allowed.refusal('169.254.169.254')).toMatch(/link-local/);
    expect(await allowed.check('https://internal.example/')).toMatchObject({ address: '10.1.2.3' });
    expect(await allowed.check('http://api.localhost/')).toMatchObject({ address: '127.0.0.1' });
    // localhost also resolves to ::1, which is not allowed.
    await expect(allowed.check('http://localhost/')).rejects.toBeInstanceOf(OutboundRefusedError);
  });

  it('parses CIDRs and bare addresses, and nothing else', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 4 });
    expect(parseCidr(' fd00::/8 ')).toEqual({ address: 'fd00::', prefix: 8, family: 6 });
    expect(parseCidr('127.0.0.1')).toEqual({ address: '127.0.0.1', prefix: 32, family: 4 });
    for (const bad of ['10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/8/1', '10.0.0.0/', '10.0.0.0/x', '']) {
      expect(parseCidr(bad)).toBeNull();
    }
  });
});

describe('outbound client (finding 5)', () => {
  it('connects to the checked address, never to what the name resolves to afterwards', async () => {
    const server = createServer((_req, res) => res.writeHead(200).end('{"ok":true}'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    let hits = 0;
    server.on('request', () => hits++);
    try {
      // The check sees 127.0.0.2 (allowed here); the system resolver would say 127.0.0.1, where
      // the server listens. Pinned to the checked address, the request cannot reach it.
      const lookups: string[] = [];
      const pinned = new OutboundPolicy({
        allow: [parseCidr('127.0.0.0/8')!],
        lookup: async (name) => {
          lookups.push(name);
          return [{ address: '127.0.0.2', family: 4 }];
        },
      });
      await expect(
        outboundRequest(pinned, `http://localhost:${port}/`, { method: 'GET', timeoutMs: 5_000, maxBytes: 1024 }),
      ).rejects.toMatchObject({ kind: 'connection', message: 'connection failed' });
      expect(lookups).toEqual(['localhost']);
      expect(hits).toBe(0);
      // The same name checked as 127.0.0.1 reaches the server, and says so.
      const direct = new OutboundPolicy({ allow: [parseCidr('127.0.0.0/8')!], lookup: table({ localhost: ['127.0.0.1'] }) });
      const r = await outboundRequest(direct, `http://localhost:${port}/`, { method: 'GET', timeoutMs: 5_000, maxBytes: 4 });
      expect(r).toEqual({ status: 200, body: '{"ok', address: '127.0.0.1' });
      expect(hits).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a refused URL is never requested; a socket error is only "connection failed"', async () => {
    const p = new OutboundPolicy({ allow: [parseCidr('127.0.0.1')!] });
    await expect(
      outboundRequest(new OutboundPolicy(), 'http://127.0.0.1:1/', { method: 'GET', timeoutMs: 5_000, maxBytes: 1 }),
    ).rejects.toMatchObject({ kind: 'refused', message: 'OUTBOUND_URL_REFUSED: the host is a loopback address' });
    await expect(
      outboundRequest(p, 'http://127.0.0.1:1/', { method: 'GET', timeoutMs: 5_000, maxBytes: 1 }),
    ).rejects.toMatchObject({
      kind: 'connection',
      message: 'connection failed',
    });
  });
});
