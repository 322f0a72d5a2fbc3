import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Db, openDatabase } from '@bindery/server/adapters/storage/database.js';
import { AccountsService } from '@bindery/server/features/accounts/accounts.service.js';
import { systemClock } from '@bindery/server/shared/clock.js';
import { postgresUrl, skipReasonPostgres } from '@bindery/server/testing/backends.js';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, baseEnv, cliPostgresEnv, type Run, runCli } from './cli.testkit.js';

// Every case runs the real CLI several times; on a loaded two-core machine one run can take seconds.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });
interface CliBackend {
  name: 'sqlite' | 'postgres';
  skip: string | undefined;
  /** Env for the child plus a way to open the same database from the test, and to remove everything. */
  setup(dataDir: string): Promise<{ env: Record<string, string>; open: () => Db; cleanup: () => Promise<void> }>;
}

const backends: CliBackend[] = [
  {
    name: 'sqlite',
    skip: undefined,
    async setup(dataDir) {
      return {
        env: {},
        open: () => openDatabase({ kind: 'sqlite', file: path.join(dataDir, 'bindery.sqlite') }),
        cleanup: async () => {},
      };
    },
  },
  {
    name: 'postgres',
    skip: skipReasonPostgres(),
    async setup() {
      // With Redis too: the CLI must close its connections cleanly; nothing is written under the prefix.
      const { env, schema, drop } = await cliPostgresEnv('bindery_cli');
      return {
        env,
        open: () => openDatabase({ kind: 'postgres', url: postgresUrl!, schema, poolSize: 2 }),
        cleanup: drop,
      };
    },
  },
];

describe.each(backends)('bindery CLI on $name', ({ name, skip, setup }) => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let db: Db | undefined;
  let cleanup: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (skip) return;
    dataDir = mkdtempSync(path.join(tmpdir(), `bindery-cli-${name}-`));
    const s = await setup(dataDir);
    cleanup = s.cleanup;
    env = { ...baseEnv(), ...s.env, BINDERY_DATA_DIR: dataDir, BINDERY_PUBLIC_URL: 'https://bindery.test' };
    const m = await runCli(['migrate', '--json'], env);
    expect(m.code, `${m.stdout}\n${m.stderr}`).toBe(0);
    db = s.open();
  });
  afterAll(async () => {
    await db?.close();
    await cleanup?.();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const run = (args: string[], input?: string) => runCli(args, env, input);
  /** Runs with --json and returns the one document on stdout, checking it succeeded. */
  async function json<T = Record<string, unknown>>(args: string[]): Promise<T> {
    const r = await run([...args, '--json']);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
    // Everything (database pool, Redis, bus) was closed: the process ended by itself.
    expect(r.stderr).not.toContain('stayed open');
    return JSON.parse(r.stdout) as T;
  }
  /** Runs with --json and returns the error document, checking the command failed with exit 1. */
  async function jsonError(args: string[]): Promise<{ code: string; message: string; details?: unknown }> {
    const r = await run([...args, '--json']);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(1);
    return (JSON.parse(r.stdout) as { error: { code: string; message: string; details?: unknown } }).error;
  }

  let vendorId: string;
  let modelId: string;
  let seed: string;

  it.skipIf(skip)('migrate applies the migrations once; a second run has nothing to do', async () => {
    const again = await json<{ backend: string; applied: string[]; migrations: string[] }>(['migrate']);
    expect(again.backend).toBe(name);
    expect(again.applied).toEqual([]);
    expect(again.migrations).toContain('001_foundation');
  });

  it.skipIf(skip)('bootstraps the first operator once; the token works; a second bootstrap is refused', async () => {
    const first = await json<{ user: { username: string; is_operator: boolean }; token: string }>([
      'operator',
      'create',
      '--username',
      'Admin',
      '--password',
      'a long password',
    ]);
    expect(first.user).toMatchObject({ username: 'admin', is_operator: true });
    expect(first.token).toMatch(/^bnd_/);
    const accounts = new AccountsService({ db: db!, clock: systemClock });
    expect(await accounts.authenticate(first.token)).toMatchObject({ kind: 'user', isOperator: true });

    const second = await jsonError(['operator', 'create', '--username', 'mallory', '--password', 'another long one']);
    expect(second.code).toBe('FORBIDDEN');
    expect(await accounts.countOperators()).toBe(1);
    // Without --json: the code and message on stderr, nothing on stdout.
    const human = await run(['operator', 'create', '--username', 'mallory', '--password', 'another long one']);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    expect(human.stderr).toContain('error FORBIDDEN: An operator exists already');

    // Logging in again gives a new token; the password may come on stdin instead of the command line.
    const tok = await run(['operator', 'token', '--username', 'admin', '--json'], 'a long password\n');
    expect(tok.code, tok.stderr).toBe(0);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    expect(token).not.toBe(first.token);
    expect(await accounts.authenticate(token)).toMatchObject({ kind: 'user', isOperator: true });
    expect((await jsonError(['operator', 'token', '--username', 'admin', '--password', 'wrong password'])).code).toBe(
      'INVALID_CREDENTIALS',
    );
  });

  it.skipIf(skip)('creates vendors and vendor keys', async () => {
    const { vendor } = await json<{ vendor: { id: string; name: string } }>(['vendor', 'create', '--name', 'Acme Devices']);
    expect(vendor.id).toMatch(/^ven_/);
    expect(vendor.name).toBe('Acme Devices');
    vendorId = vendor.id;
    await json(['vendor', 'create', '--name', 'Other']);

    const { vendors } = await json<{ vendors: Array<{ id: string }> }>(['vendor', 'list']);
    expect(vendors.map((v) => v.id)).toContain(vendorId);
    expect(vendors).toHaveLength(2);
    expect((await json<{ vendor: { id: string } }>(['vendor', 'show', vendorId])).vendor.id).toBe(vendorId);
    expect((await jsonError(['vendor', 'show', 'ven_nosuch'])).code).toBe('VENDOR_NOT_FOUND');
    expect((await jsonError(['vendor', 'create', '--name', '   '])).code).toBe('VALIDATION_FAILED');

    const key = await json<{ id: string; token: string }>(['vendor', 'key', 'create', vendorId, '--name', 'factory']);
    const accounts = new AccountsService({ db: db!, clock: systemClock });
    expect(await accounts.authenticate(key.token)).toEqual({ kind: 'vendor_key', vendorId, tokenId: key.id });

    const table = await run(['vendor', 'list']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED$/);
    expect(table.stdout).toContain('Acme Devices');
  });

  it.skipIf(skip)('creates, shows, updates a model; its secrets are shown once', async () => {
    const bad = await jsonError(['model', 'create', vendorId, '--name', 'X', '--class', '999', '--label-format', 'foo']);
    expect(bad.code).toBe('VALIDATION_FAILED');
    expect((bad.details as { problems: string[] }).problems).toHaveLength(2);

    const created = await json<{
      model: { model_id: string; category: string; class: string; shared_seed: boolean; label_format: string };
      model_secret: string;
      seed_secret_no: string;
    }>([
      'model',
      'create',
      vendorId,
      '--name',
      'Face Terminal 5510R',
      '--product-key',
      'pk5510',
      '--category',
      '2',
      '--class',
      '101',
      '--shared-seed',
      '--label-format',
      'quectel',
    ]);
    modelId = created.model.model_id;
    seed = created.seed_secret_no;
    expect(created.model).toMatchObject({
      category: '桌面收银设备',
      class: '大屏自助收银机',
      shared_seed: true,
      label_format: 'quectel',
    });
    expect(created.model_secret.length).toBeGreaterThan(20);
    expect(seed).toMatch(/^[0-9a-f]{32}$/);

    const shown = await run(['model', 'show', modelId, '--json']);
    expect(shown.stdout).not.toContain(created.model_secret);
    expect(shown.stdout).not.toContain(seed);
    expect((await jsonError(['model', 'create', vendorId, '--name', 'Y', '--product-key', 'pk5510'])).code).toBe(
      'PRODUCT_KEY_TAKEN',
    );

    const updated = await json<{ model: { name: string; require_check_char: boolean; binding_mode: string } }>([
      'model',
      'update',
      modelId,
      '--name',
      'Face Terminal 5510R v2',
      '--require-check-char',
      '--binding-mode',
      'shared',
    ]);
    expect(updated.model).toMatchObject({ name: 'Face Terminal 5510R v2', require_check_char: true, binding_mode: 'shared' });
    const off = await json<{ model: { require_check_char: boolean; name: string } }>([
      'model',
      'update',
      modelId,
      '--no-require-check-char',
    ]);
    expect(off.model).toMatchObject({ require_check_char: false, name: 'Face Terminal 5510R v2' });
    expect((await jsonError(['model', 'update', modelId])).code).toBe('VALIDATION_FAILED');

    const { models } = await json<{ models: Array<{ model_id: string }> }>(['model', 'list', vendorId]);
    expect(models.map((m) => m.model_id)).toEqual([modelId]);

    const rotated = await json<{ model_secret: string }>(['model', 'rotate-secret', modelId]);
    expect(rotated.model_secret).not.toBe(created.model_secret);
    const t1 = await json<{ model_ticket: string; expires_in: number }>(['model', 'ticket', modelId]);
    const t2 = await json<{ model_ticket: string }>(['model', 'ticket', modelId]);
    expect(t1.expires_in).toBeGreaterThan(0);
    expect(t2.model_ticket).toBe(t1.model_ticket); // the newest ticket, until it is due for renewal
    expect((await json<{ seed_secret_no: string }>(['model', 'seed', modelId])).seed_secret_no).toBe(seed);
    expect((await jsonError(['model', 'show', 'mdl_nosuch'])).code).toBe('MODEL_NOT_FOUND');
  });

  it.skipIf(skip)('registers, finds, lists, reveals and unregisters devices', async () => {
    const r = await json<{
      device: { sn: string; qr_code: string; label_content: string; operating_system: string };
      secret_no: string;
    }>(['device', 'register', modelId, 'HSA1RF5A0700165', '--os', 'android', '--app-scene', '1', '--camera-sn', 'IMIH-A100']);
    expect(r.secret_no).toMatch(/^[0-9a-f]{32}$/);
    expect(r.device.qr_code).toMatch(/^https:\/\/bindery\.test\/connect\/hardware\?hw_code=[A-Za-z0-9_-]{22}$/);
    expect(r.device.label_content).toBe('pk=pk5510&sn=HSA1RF5A0700165&v=1');
    expect(r.device.operating_system).toBe('ANDROID');

    expect((await jsonError(['device', 'register', modelId, 'hsa1rf5a0700165'])).code).toBe('SN_TAKEN');
    expect((await jsonError(['device', 'register', modelId, 'bad-sn!'])).code).toBe('INVALID_SN');
    for (const sn of ['HSB0001', 'HSB0002', 'HSB0003']) await json(['device', 'register', modelId, sn]);

    const shown = await json<{ device: { sn: string; camera_sn: string } }>(['device', 'show', 'hsa1rf5a0700165']);
    expect(shown.device).toMatchObject({ sn: 'HSA1RF5A0700165', camera_sn: 'IMIH-A100' });
    expect((await json<{ secret_no: string }>(['device', 'secret', 'HSA1RF5A0700165'])).secret_no).toBe(r.secret_no);

    const page = await json<{ devices: Array<{ sn: string }>; next_cursor: string | null }>([
      'device',
      'list',
      vendorId,
      '--limit',
      '2',
    ]);
    expect(page.devices.map((d) => d.sn)).toEqual(['HSA1RF5A0700165', 'HSB0001']);
    expect(page.next_cursor).toBeTruthy();
    const rest = await json<{ devices: Array<{ sn: string }>; next_cursor: string | null }>([
      'device',
      'list',
      vendorId,
      '--limit',
      '2',
      '--cursor',
      page.next_cursor!,
    ]);
    expect(rest.devices.map((d) => d.sn)).toEqual(['HSB0002', 'HSB0003']);
    const all = await json<{ devices: Array<{ sn: string }>; next_cursor: string | null }>([
      'device',
      'list',
      vendorId,
      '--limit',
      '1',
      '--all',
    ]);
    expect(all.devices).toHaveLength(4);
    expect(all.next_cursor).toBeNull();
    const found = await json<{ devices: Array<{ sn: string }> }>(['device', 'list', vendorId, '--q', 'hsb', '--model', modelId]);
    expect(found.devices.map((d) => d.sn)).toEqual(['HSB0001', 'HSB0002', 'HSB0003']);
    const usage = await jsonError(['device', 'list', vendorId, '--limit', '0']);
    expect(usage.code).toBe('VALIDATION_FAILED');
    expect(usage.message).toContain('--limit');

    expect(await json(['device', 'unregister', 'HSB0003'])).toEqual({ sn: 'HSB0003', unregistered: true });
    const gone = await run(['device', 'show', 'HSB0003']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('error DEVICE_NOT_FOUND: No device with SN HSB0003');
  });

  it.skipIf(skip)('creates a batch of 50, downloads its zip with 50 PNGs, writes its secrets file', async () => {
    const usage = await jsonError(['batch', 'create', modelId, '--count', '5', '--random', '--width', '3']);
    expect(usage).toMatchObject({ code: 'VALIDATION_FAILED', message: '--width belongs to counter SNs, not --random' });
    const tooMany = await jsonError(['batch', 'create', modelId, '--count', '100001', '--prefix', 'QA', '--width', '6']);
    expect((tooMany.details as { problems: string[] }).problems).toEqual(['count must be a whole number from 1 to 100000']);

    // Piped stderr is not a terminal: no progress bar may leak into it.
    const created = await run(['batch', 'create', modelId, '--count', '50', '--prefix', 'QA', '--width', '6', '--check-char']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).not.toContain('generating');
    // Issue 11: counter SNs are guessable, and the command says so (on stderr, never in --json stdout).
    expect(created.stderr).toMatch(/^warning: Counter SNs are guessable/m);
    expect(created.stdout).toMatch(/^first_sn\s+QA000001\w$/m);
    const { batches } = await json<{ batches: Array<{ id: string; count: number; state: string; first_sn: string }> }>([
      'batch',
      'list',
      modelId,
    ]);
    expect(batches).toHaveLength(1);
    const batch = batches[0]!;
    expect(batch).toMatchObject({ count: 50, state: 'ready' });
    const shown = await json<{ batch: { id: string; counts: { generated: number } } }>(['batch', 'show', batch.id]);
    expect(shown.batch.counts.generated).toBe(50);
    const { devices } = await json<{ devices: Array<{ sn: string }> }>([
      'device',
      'list',
      vendorId,
      '--batch',
      batch.id,
      '--all',
    ]);
    expect(devices).toHaveLength(50);

    const zipFile = path.join(dataDir, 'labels.zip');
    const dl = await json<{ file: string; bytes: number; devices: number }>(['batch', 'download', batch.id, '-o', zipFile]);
    expect(dl).toMatchObject({ file: zipFile, devices: 50, bytes: statSync(zipFile).size });
    const entries = unzipSync(readFileSync(zipFile));
    const pngs = Object.keys(entries).filter((n) => n.startsWith('png/') && n.endsWith('.png'));
    expect(pngs.sort()).toEqual(devices.map((d) => `png/${d.sn}.png`).sort());
    for (const name of pngs) expect(Buffer.from(entries[name]!.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    expect((await json<{ batch: { counts: { downloaded: number } } }>(['batch', 'show', batch.id])).batch.counts.downloaded).toBe(
      1,
    );

    const secretsFile = path.join(dataDir, 'secrets.csv');
    expect(await json(['batch', 'secrets', batch.id, '-o', secretsFile])).toEqual({
      batch_id: batch.id,
      file: secretsFile,
      rows: 50,
    });
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const lines = readFileSync(secretsFile, 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('SN,SecretNo,SeedSecretNo'); // the model shares a seed
    const firstSn = lines[1]!.split(',')[0]!;
    expect(lines[1]).toBe(`${firstSn},${(await json<{ secret_no: string }>(['device', 'secret', firstSn])).secret_no},${seed}`);

    // A failed download leaves no file behind.
    const missing = path.join(dataDir, 'missing.zip');
    expect((await jsonError(['batch', 'download', 'bat_nosuch', '-o', missing])).code).toBe('BATCH_NOT_FOUND');
    expect(() => statSync(missing)).toThrow();
  });

  it.skipIf(skip)('draws a progress bar when stderr is a terminal', async () => {
    // `script` runs the CLI on a pseudo-terminal and records what it drew.
    const log = path.join(dataDir, 'tty.log');
    const cmd = [process.execPath, BIN, 'batch', 'create', modelId, '--count', '300', '--prefix', 'TTY', '--width', '4']
      .map((a) => `'${a}'`)
      .join(' ');
    const r = await new Promise<Run>((resolve, reject) => {
      const c = spawn('script', ['-qec', cmd, log], { env, cwd: dataDir });
      c.on('error', reject);
      c.on('close', (code) => resolve({ code, stdout: '', stderr: '' }));
    });
    expect(r.code).toBe(0);
    const drawn = readFileSync(log, 'utf8');
    expect(drawn).toMatch(/generating \[.*\] 100% \| 300\/300/);
    expect(drawn).toMatch(/^count\s+300/m);
  });

  it.skipIf(skip)(
    'imports relation files: a bad one is refused with line numbers and writes nothing; a clean one pairs',
    async () => {
      const tpl = path.join(dataDir, 'template.csv');
      expect((await json<{ file: string }>(['relations', 'template', '--lang', 'en', '-o', tpl])).file).toBe(tpl);
      const header = readFileSync(tpl, 'utf8');
      expect(header).toBe('\uFEFF*DeviceKey,*ProductKey,Device SN,Device Name,Certificate Fingerprint\r\n');
      const xlsx = path.join(dataDir, 'template.xlsx');
      await json(['relations', 'template', '--format', 'xlsx', '-o', xlsx]);
      expect(readFileSync(xlsx).subarray(0, 2).toString()).toBe('PK'); // a zip container

      const { devices } = await json<{ devices: Array<{ sn: string }> }>([
        'device',
        'list',
        vendorId,
        '--q',
        'QA',
        '--limit',
        '3',
      ]);
      const [a, b, c] = devices.map((d) => d.sn);
      const bad = path.join(dataDir, 'bad.csv');
      writeFileSync(
        bad,
        `${header}861234567890001,pk5510,${a},one\r\n861234567890002,pk5510,NOSUCHSN,two\r\n861234567890001,pk5510,${b},three\r\n`,
      );
      const refused = await run(['relations', 'import', vendorId, bad]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toContain('error IMPORT_REJECTED: The file has errors; nothing was imported');
      expect(refused.stderr).toMatch(/line 3, Device SN "NOSUCHSN": /);
      expect(refused.stderr).toMatch(/line 4, \*DeviceKey "861234567890001": /);
      const asJson = await jsonError(['relations', 'import', vendorId, bad]);
      expect(asJson.code).toBe('IMPORT_REJECTED');
      expect((asJson.details as { errors: Array<{ line: number }> }).errors.map((e) => e.line)).toEqual([3, 4]);
      expect((await json<{ device: { device_key: string | null } }>(['device', 'show', a!])).device.device_key).toBeNull();

      const good = path.join(dataDir, 'good.csv');
      writeFileSync(good, `${header}861234567890001,pk5510,${a},one\r\n861234567890002,pk5510,${b},two\r\n`);
      const dry = await json<{ dry_run: boolean; paired: number }>(['relations', 'import', vendorId, good, '--dry-run']);
      expect(dry).toMatchObject({ dry_run: true, paired: 2 });
      expect((await json<{ device: { device_key: string | null } }>(['device', 'show', a!])).device.device_key).toBeNull();
      const done = await run(['relations', 'import', vendorId, good]);
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toMatch(/^imported 2 rows: 2 paired, 0 updated, 0 unchanged/);
      const again = await json<{ imported: boolean; paired: number; unchanged: number }>(['relations', 'import', vendorId, good]);
      expect(again).toMatchObject({ imported: true, paired: 0, unchanged: 2 });
      const found = await json<{ devices: Array<{ sn: string; device_key: string }> }>([
        'device',
        'list',
        vendorId,
        '--q',
        '861234567890002',
      ]);
      expect(found.devices).toEqual([expect.objectContaining({ sn: b, device_key: '861234567890002' })]);
      expect((await json<{ device: { device_key: string | null } }>(['device', 'show', c!])).device.device_key).toBeNull();
      const { imports } = await json<{ imports: Array<{ result: string }> }>(['relations', 'imports', vendorId]);
      expect(imports.map((i) => i.result)).toEqual(['imported', 'imported', 'rejected', 'rejected']);
      expect((await jsonError(['relations', 'import', vendorId, path.join(dataDir, 'nope.csv')])).code).toBe('NOT_FOUND');
    },
  );

  it.skipIf(skip)('config check prints the effective configuration without secrets, or every problem', async () => {
    const ok = await run(['config', 'check', '--connect', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const doc = JSON.parse(ok.stdout) as { ok: boolean; config: Record<string, unknown>; database: string };
    expect(doc).toMatchObject({ ok: true, database: 'reachable' });
    expect(doc.config).toMatchObject({ storage: name, dataDir, publicUrl: 'https://bindery.test' });
    expect(String(doc.config.masterKey)).toBe(`file ${path.join(dataDir, 'master.key')}`);

    const keyed = await runCli(['config', 'check', '--json'], { ...env, BINDERY_MASTER_KEY: 'ab'.repeat(32) });
    expect(keyed.stdout).not.toContain('ab'.repeat(32));
    expect((JSON.parse(keyed.stdout) as { config: { masterKey: string } }).config.masterKey).toBe('BINDERY_MASTER_KEY');

    const bad = {
      ...env,
      BINDERY_PORT: '99999',
      DATABASE_URL: 'mysql://db/x',
      BINDERY_LOG_LEVEL: 'loud',
      BINDERY_TLS_CERT: '/etc/cert.pem',
      BINDERY_MASTER_KEY: 'short',
    };
    const human = await runCli(['config', 'check'], bad);
    expect(human.code).toBe(1);
    expect(human.stdout).toBe('');
    for (const problem of [
      'BINDERY_PORT must be an integer from 0 to 65535 (got "99999")',
      'DATABASE_URL must be a postgres:// URL',
      'BINDERY_LOG_LEVEL must be one of',
      'BINDERY_TLS_CERT and BINDERY_TLS_KEY must be given together',
      'BINDERY_MASTER_KEY must be 32 bytes',
    ]) {
      expect(human.stderr).toContain(problem);
    }
    const asJson = await runCli(['config', 'check', '--json'], bad);
    expect(asJson.code).toBe(1);
    const err = (JSON.parse(asJson.stdout) as { error: { code: string; details: { problems: string[] } } }).error;
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.details.problems).toHaveLength(5);
    // Any other command refuses to start on the same configuration, with the same listing.
    const refused = await runCli(['vendor', 'list', '--json'], bad);
    expect(refused.code).toBe(1);
    expect((JSON.parse(refused.stdout) as { error: { code: string } }).error.code).toBe('CONFIG_INVALID');
  });

  it.skipIf(skip)('usage errors are reported like any other error; --help succeeds', async () => {
    const unknown = await jsonError(['nosuch']);
    expect(unknown).toEqual({ code: 'VALIDATION_FAILED', message: "unknown command 'nosuch'" });
    const missing = await run(['vendor', 'create']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("required option '--name <name>' not specified");
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const group of ['batch', 'config', 'device', 'migrate', 'model', 'operator', 'relations', 'vendor']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${group}\\b`, 'm'));
    }
  });
});

describe('bindery launcher', () => {
  it('runs from any directory through the node_modules/.bin link and forwards the exit code', async () => {
    const link = path.resolve(path.dirname(BIN), '../../../node_modules/.bin/bindery');
    const dir = mkdtempSync(path.join(tmpdir(), 'bindery-cli-cwd-'));
    try {
      writeFileSync(path.join(dir, 'package.json'), '{}');
      const env = { ...baseEnv(), BINDERY_DATA_DIR: path.join(dir, 'data') };
      const ok = await new Promise<Run>((resolve, reject) => {
        const c = spawn(link, ['config', 'check', '--json'], { cwd: dir, env });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d: Buffer) => {
          stdout += d;
        });
        c.stderr.on('data', (d: Buffer) => {
          stderr += d;
        });
        c.on('error', reject);
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect(ok.code, ok.stderr).toBe(0);
      expect((JSON.parse(ok.stdout) as { config: { dataDir: string } }).config.dataDir).toBe(path.join(dir, 'data'));
      const failed = await runCli(['config', 'check'], { ...env, BINDERY_PORT: 'x' }, undefined);
      expect(failed.code).toBe(1);

      // A person sees log lines as sentences on stderr, results on stdout.
      const migrated = await runCli(['migrate'], env);
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stdout).toMatch(/^applied \d+ migration\(s\) on sqlite: 001_foundation, /);
      expect(migrated.stderr).toBe(
        `bindery warning: generated a new master key; back it up apart from the database (file=${path.join(dir, 'data', 'master.key')})\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
