import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../cli.testkit.js';

// Each case runs the real CLI; on a loaded two-core machine one run can take seconds.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

describe('bindery merchant', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'bindery-cli-merchant-'));
    env = { PATH: process.env.PATH, HOME: process.env.HOME, BINDERY_DATA_DIR: dir, BINDERY_PUBLIC_URL: 'https://bindery.test' };
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function json<T>(args: string[]): Promise<T> {
    const r = await runCli([...args, '--json'], env);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  }

  it('sets up a merchant with a sub-merchant, a key and an APIv3 key, and hands out the platform key', async () => {
    const created = await json<{ merchant: { mchid: string; key_mode: string } }>([
      'merchant',
      'create',
      '--mchid',
      '1900000001',
      '--shortname',
      '某公司',
      '--name',
      'Shop Group',
      '--key-mode',
      'platform_certificate',
    ]);
    expect(created.merchant).toMatchObject({ mchid: '1900000001', key_mode: 'platform_certificate' });

    const withSub = await json<{ merchant: { sub_merchants: Array<{ sub_mchid: string }> } }>([
      'merchant',
      'sub',
      'add',
      '1900000001',
      '--sub-mchid',
      '1900000002',
      '--shortname',
      '分店',
      '--name',
      'Branch',
    ]);
    expect(withSub.merchant.sub_merchants.map((s) => s.sub_mchid)).toEqual(['1900000002']);

    const pub = path.join(dir, 'key.pem');
    writeFileSync(pub, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }));
    const k = await json<{ key: { serial_no: string } }>([
      'merchant',
      'key',
      'add',
      '1900000001',
      '--public-key',
      pub,
      '--serial',
      'SERIAL1',
    ]);
    expect(k.key.serial_no).toBe('SERIAL1');
    const refused = await runCli(['merchant', 'key', 'add', '1900000001', '--public-key', pub], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('serial_no is required with a public key');

    const generated = await json<{ apiv3_key: string }>(['merchant', 'apiv3-key', '1900000001']);
    expect(generated.apiv3_key).toMatch(/^[A-Za-z0-9]{32}$/);

    const out = path.join(dir, 'platform.pem');
    const pk = await json<{ platform_key: { pub_key_id: string; public_key_pem: string } }>([
      'merchant',
      'platform-key',
      '--out',
      out,
    ]);
    expect(pk.platform_key.pub_key_id).toMatch(/^PUB_KEY_ID_\d{34}$/);
    expect(createPublicKey(readFileSync(out, 'utf8')).export({ type: 'spki', format: 'pem' })).toBe(
      pk.platform_key.public_key_pem,
    );

    const shown = await runCli(['merchant', 'show', '1900000001'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('1900000002');
    expect(shown.stdout).toContain('SERIAL1');
  });

  it('rejects an inspection csv whole, naming each bad line', async () => {
    const csv = path.join(dir, 'inspections.csv');
    writeFileSync(csv, 'device_sn,result,inspect_time\nNOPE1,SUCCESS,bad\nNOPE2,MAYBE,2025-01-01T00:00:00Z\n');
    const r = await runCli(['merchant', 'inspections', csv, '--json'], env);
    expect(r.code).toBe(1);
    const error = JSON.parse(r.stdout).error;
    expect(error.code).toBe('IMPORT_REJECTED');
    expect(error.details.errors.map((e: { line: number }) => e.line)).toEqual([2, 3]);
  });
});
