import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { skipReasonPostgres } from '@bindery/server/testing/backends.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cliPostgresEnv, runCli } from './cli.testkit.js';

// Each case runs the real CLI as a child process; on a loaded two-core machine one run can take seconds.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 120_000 });

/** Every command here is run with --json. */
const run = (args: string[], env: NodeJS.ProcessEnv, input = '') => runCli([...args, '--json'], env, input);

const backends = [
  { name: 'sqlite', skip: undefined as string | undefined },
  { name: 'postgres', skip: skipReasonPostgres() },
];

describe.each(backends)('bindery org on $name', ({ name, skip }) => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (skip) return;
    dataDir = mkdtempSync(path.join(tmpdir(), `bindery-cli-org-${name}-`));
    env = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(BINDERY_|DATABASE_URL|TEST_|REDIS_URL)/.test(k)) env[k] = v;
    Object.assign(env, { BINDERY_DATA_DIR: dataDir, BINDERY_PUBLIC_URL: 'https://bindery.test' });
    if (name === 'postgres') {
      const pg = await cliPostgresEnv();
      drop = pg.drop;
      Object.assign(env, pg.env);
    }
  });
  afterAll(async () => {
    await drop?.();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it.skipIf(skip)(
    'creates an organisation with a new super admin (password on stdin), lists it, prints an invitation',
    async () => {
      const c = await run(['org', 'create', '--name', 'Acme', '--admin-username', 'boss'], env, 'a long password 1\n');
      expect(c.code, c.stderr).toBe(0);
      const created = JSON.parse(c.stdout);
      expect(created).toMatchObject({ organisation: { name: 'Acme', member_binding: false }, super_admin: { username: 'boss' } });

      const l = await run(['org', 'list'], env);
      expect(JSON.parse(l.stdout).organisations.map((o: { id: string }) => o.id)).toEqual([created.organisation.id]);

      const inv = await run(['org', 'invite', created.organisation.id, '--role', 'member'], env);
      expect(inv.code, inv.stderr).toBe(0);
      expect(JSON.parse(inv.stdout).url).toMatch(/^https:\/\/bindery\.test\/invite#[\w-]{32}$/);

      const bad = await run(['org', 'invite', created.organisation.id, '--role', 'boss'], env);
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stdout).error.code).toBe('VALIDATION_FAILED');
      const dup = await run(['org', 'create', '--name', 'Other', '--admin-username', 'boss'], env, 'a long password 1\n');
      expect(JSON.parse(dup.stdout).error.code).toBe('ALREADY_EXISTS');
      expect(JSON.parse((await run(['org', 'list'], env)).stdout).organisations).toHaveLength(1);
    },
  );
});
