import { chmodSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** Leftovers of a write that never finished: firmware uploads (`*.part`) and generic temp files. */
const TEMP_FILE = /\.(part|tmp)$|^\.tmp-/;

export interface DataDirReport {
  /** Files and directories whose mode was narrowed to 0600 / 0700. */
  tightened: string[];
  /** Temporary files of a previous run that were removed. */
  removed: string[];
}

/**
 * Finding 10 and 9, at start, before anything opens a file in the data directory:
 * - the data directory is created 0700, and files and directories left in it by an older version
 *   or another tool are narrowed to 0600 / 0700;
 * - with `server` (the server's start; never the CLI, whose own output files are the user's and
 *   which may run beside a live server mid-upload): the process umask becomes 077, so every file
 *   the server creates from here on (SQLite database and its -wal/-shm, master key, device logs,
 *   firmware) is 0600 and every directory 0700; and temporary files of a write a crash
 *   interrupted (firmware `*.part`, `*.tmp`) are removed: nothing refers to them, and nothing
 *   else would ever delete them.
 */
export function prepareDataDir(
  dataDir: string,
  opts: { server?: boolean; logger?: Pick<Logger, 'info' | 'warn'> } = {},
): DataDirReport {
  const logger = opts.logger;
  if (opts.server) process.umask(0o077);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const report: DataDirReport = { tightened: [], removed: [] };
  walk(dataDir, report, opts.server === true);
  if (report.tightened.length > 0) {
    logger?.warn(
      { dataDir, count: report.tightened.length, examples: report.tightened.slice(0, 5) },
      'data directory entries were readable by others; narrowed to 0600 (files) / 0700 (directories)',
    );
  }
  if (report.removed.length > 0) {
    logger?.info({ dataDir, removed: report.removed }, 'removed temporary files left by an interrupted write');
  }
  return report;
}

function walk(p: string, report: DataDirReport, sweepTemp: boolean): void {
  const st = statSync(p);
  if (st.isDirectory()) {
    if ((st.mode & 0o077) !== 0) {
      chmodSync(p, 0o700);
      report.tightened.push(p);
    }
    for (const name of readdirSync(p)) walk(path.join(p, name), report, sweepTemp);
    return;
  }
  if (!st.isFile()) return;
  if (sweepTemp && TEMP_FILE.test(path.basename(p))) {
    rmSync(p, { force: true });
    report.removed.push(p);
    return;
  }
  if ((st.mode & 0o077) !== 0) {
    chmodSync(p, 0o600);
    report.tightened.push(p);
  }
}
