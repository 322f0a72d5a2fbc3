import { createWriteStream, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InvalidArgumentError } from 'commander';

/** Commander parser for a whole number in [min, max]; anything else is a usage error naming the limits. */
export function intArg(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** Commander parser that accepts one of `values`. */
export function oneOf<T extends string>(values: readonly T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`must be one of ${values.join(', ')}`);
    }
    return value as T;
  };
}

/**
 * A password from the option, else from stdin: typed without echo at a terminal, or the first
 * line of piped input (`echo "$PW" | bindery operator token --username admin`) so it stays out
 * of the process list and shell history.
 */
export async function readPassword(given: string | undefined, prompt = 'Password: '): Promise<string> {
  if (given !== undefined) return given;
  if (process.stdin.isTTY) return promptHidden(prompt);
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

async function promptHidden(question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  process.stderr.write(question);
  muted = true;
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/**
 * Writes a file through `fill` so that it appears complete or not at all: the bytes go to a
 * sibling temp file, renamed into place only after `fill` succeeded and the data is flushed.
 * `fill` may end the stream itself or leave that to us.
 */
export async function writeFileAtomically(
  target: string,
  fill: (out: Writable) => Promise<unknown>,
  opts: { mode?: number } = {},
): Promise<{ path: string; bytes: number }> {
  const abs = path.resolve(target);
  const tmp = path.join(path.dirname(abs), `.${path.basename(abs)}.${process.pid}.partial`);
  const out = createWriteStream(tmp, { mode: opts.mode ?? 0o644 });
  // Ctrl-C mid-download must not leave the temp file (for secrets: readable secrets) behind.
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(tmp, { force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await new Promise<void>((resolve, reject) => {
      out.once('open', () => resolve());
      out.once('error', reject);
    });
    await fill(out);
    if (!out.writableEnded) out.end();
    await finished(out);
    renameSync(tmp, abs);
    return { path: abs, bytes: out.bytesWritten };
  } catch (e) {
    out.destroy();
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
