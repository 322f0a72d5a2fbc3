import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { baseEnv, runCli } from './cli.testkit.js';

vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

/** `bindery firmware` (issue 13 item 7): the real binary on SQLite, as a script would run it. */
describe('bindery firmware', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'bindery-cli-fw-'));
    env = { ...baseEnv(), BINDERY_DATA_DIR: dataDir, BINDERY_PUBLIC_URL: 'https://bindery.test' };
    expect((await runCli(['migrate', '--json'], env)).code).toBe(0);
  });
  afterAll(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
    const r = await runCli([...args, '--json'], env);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    return JSON.parse(r.stdout) as T;
  }

  it('uploads a file with its digests, publishes a URL, switches the current version, lists the fleet', async () => {
    const { vendor } = await json<{ vendor: { id: string } }>(['vendor', 'create', '--name', 'Fw Cli']);
    const { model } = await json<{ model: { model_id: string } }>(['model', 'create', vendor.id, '--name', 'Lamp']);
    const file = path.join(dataDir, 'lamp-1.2.0.bin');
    const bytes = Buffer.from('lamp firmware '.repeat(10_000));
    writeFileSync(file, bytes);
    type Fw = { version: string; current: boolean; md5sum: string; sha256: string | null; size: number };
    const up = await json<{ firmware: Fw }>(['firmware', 'upload', model.model_id, file, '--version', '1.2.0']);
    expect(up.firmware).toMatchObject({
      version: '1.2.0',
      current: true,
      size: bytes.length,
      md5sum: createHash('md5').update(bytes).digest('hex'),
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    const bad = await runCli(['firmware', 'upload', model.model_id, file, '--version', '1.2.1', '--md5', '0'.repeat(32)], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('md5sum does not match');
    await json([
      'firmware',
      'publish',
      model.model_id,
      '--version',
      '1.3.0',
      '--url',
      'https://cdn.example/lamp-1.3.0.bin',
      '--md5',
      'a'.repeat(32),
      '--size',
      '2048',
      '--not-current',
    ]);
    const listed = await json<{ firmware: Fw[] }>(['firmware', 'list', model.model_id]);
    expect(listed.firmware.map((f) => [f.version, f.current])).toEqual([
      ['1.3.0', false],
      ['1.2.0', true],
    ]);
    await json(['firmware', 'current', model.model_id, '1.3.0']);
    expect((await json<{ firmware: Fw[] }>(['firmware', 'list', model.model_id])).firmware[0]).toMatchObject({
      version: '1.3.0',
      current: true,
    });
    const missing = await runCli(['firmware', 'current', model.model_id, '9.9.9'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('FIRMWARE_NOT_FOUND');
    await json(['device', 'register', model.model_id, 'LAMP0001']);
    const fleet = await json<{ versions: unknown[] }>(['firmware', 'fleet', model.model_id]);
    expect(fleet.versions).toEqual([{ version: null, devices: 1, online: 0 }]);
    const human = await runCli(['firmware', 'list', model.model_id], env);
    expect(human.stdout.split('\n')[0]).toMatch(/^VERSION\s+CURRENT\s+SIZE\s+MD5\s+SHA-256/);
  });
});
