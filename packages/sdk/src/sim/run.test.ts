import { describe, expect, it } from 'vitest';
import { FleetCluster } from './cluster.js';
import { parseAddressRange } from './run.js';

describe('simulator options', () => {
  it('expands loopback source address ranges and refuses anything outside 127.0.0.0/8', () => {
    expect(parseAddressRange('127.0.0.2-127.0.0.5')).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
    expect(parseAddressRange('127.0.0.9, 127.1.2.3')).toEqual(['127.0.0.9', '127.1.2.3']);
    expect(() => parseAddressRange('10.0.0.2')).toThrow(/loopback/);
    expect(() => parseAddressRange('127.0.0.5-127.0.0.2')).toThrow(/bad range/);
    expect(() => parseAddressRange('127.0.0.2-127.0.1.5')).toThrow(/loopback/);
  });

  it('the multi-process fleet only aims at loopback and never overfills a process', async () => {
    const devices = [{ sn: 'A1', secretNo: 'x' }];
    await expect(FleetCluster.start({ url: 'ws://192.0.2.1:8080/', devices })).rejects.toThrow(/127\.0\.0\.0\/8/);
    await expect(FleetCluster.start({ url: 'ws://127.0.0.1:1/', devices, localAddresses: ['192.0.2.9'] })).rejects.toThrow(
      /not in 127/,
    );
    const many = Array.from({ length: 40_000 }, (_, i) => ({ sn: `S${i}`, secretNo: 'x' }));
    await expect(FleetCluster.start({ url: 'ws://127.0.0.1:1/', devices: many, processes: 2 })).rejects.toThrow(/more processes/);
  });
});
