import { readFileSync } from 'node:fs';
import os from 'node:os';

/** What a figure is worth depends on where it ran: every gateway benchmark prints this. */
export function machine(): { text: string; load: number[] } {
  const cpus = os.cpus();
  const load = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const text = [
    `CPU: ${cpus[0]?.model ?? 'unknown'} × ${cpus.length} cores`,
    `RAM: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB (${(os.freemem() / 2 ** 30).toFixed(1)} GiB free)`,
    `Node: ${process.version} on ${os.type()} ${os.release()}`,
    `open files: soft ${nofile('Soft')} / hard ${nofile('Hard')} per process`,
    `load average: ${load.join(' ')}`,
  ].join('\n');
  return { text, load };
}

function nofile(which: 'Soft' | 'Hard'): string {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return (which === 'Soft' ? m?.[1] : m?.[2]) ?? '?';
}

/** VmRSS of a process, from /proc/<pid>/status, in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** RSS split as the kernel counts it: anonymous (heap, malloc), file-backed (code, mmapped files), shared memory. */
export function rssParts(pid: number): { anon: number; file: number; shmem: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? 0) * 1024;
  return { anon: get('RssAnon'), file: get('RssFile'), shmem: get('RssShmem') };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`;
export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Loopback source addresses 127.0.0.<from>…<from+n-1>: each gives the load generator ~28 000 ports. */
export function loopbacks(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${from + i}`);
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function sumCpu(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + cpuSeconds(p), 0);
}
