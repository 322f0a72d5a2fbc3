import { readFileSync } from 'node:fs';

/** The server's version (packages/server/package.json), as instance health and node reports show it. */
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** When this process started (epoch ms, real time): uptime is measured from it. */
export const PROCESS_STARTED_AT: number = Math.round(performance.timeOrigin);
