import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPgSchema, postgresUrl, redisUrl } from '@bindery/server/testing/backends.js';

/** The real `bindery` binary, as `npx bindery` runs it. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/bindery.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment the child gets: none of the test runner's database or Bindery settings leak in. */
export function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(BINDERY_|DATABASE_URL|TEST_DATABASE_URL|REDIS_URL|TEST_REDIS_URL)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** Runs the real CLI as a child process, from a cwd unrelated to the repository; `input` is its stdin. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * A PostgreSQL schema of its own for a CLI suite. The CLI reads only DATABASE_URL, so the schema
 * travels in the URL as a startup option; with `redisPrefix` (and a test Redis) the CLI also gets
 * REDIS_URL, so it must close its Redis connections cleanly.
 */
export async function cliPostgresEnv(
  redisPrefix?: string,
): Promise<{ env: Record<string, string>; schema: string; drop: () => Promise<void> }> {
  const { schema, drop } = await createPgSchema(postgresUrl!);
  const u = new URL(postgresUrl!);
  u.searchParams.set('options', `-c search_path=${schema}`);
  const env: Record<string, string> = { DATABASE_URL: u.toString() };
  if (redisPrefix !== undefined && redisUrl) {
    env.REDIS_URL = redisUrl;
    env.BINDERY_REDIS_PREFIX = `${redisPrefix}_${schema}`;
  }
  return { env, schema, drop };
}
