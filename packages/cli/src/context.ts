import type { Config } from '@bindery/server/config.js';
import { loadConfig } from '@bindery/server/config.js';
import type { Deps } from '@bindery/server/deps.js';
import type { Services } from '@bindery/server/services.js';
import { createLogger } from '@bindery/server/shared/logger.js';
import { type Principal, SYSTEM_CLI } from '@bindery/server/shared/principal.js';
import { Output } from './output.js';
import { createProgress, type Progress } from './progress.js';

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };

/**
 * pino writes one JSON object per line; a person at a terminal gets "bindery warning: msg (k=v)"
 * instead. With --json the raw lines stay, for machines.
 */
function humanLogLines(stream: NodeJS.WritableStream): { write(line: string): void } {
  return {
    write(line: string) {
      try {
        const { level, msg, time: _t, node: _n, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown>;
        const extra = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        stream.write(`bindery ${LEVELS[Number(level)] ?? 'log'}: ${String(msg ?? '')}${extra ? ` (${extra})` : ''}\n`);
      } catch {
        stream.write(line);
      }
    },
  };
}

export type Env = Record<string, string | undefined>;

/** Options every command accepts (given before or after the command name). */
export interface GlobalOptions {
  json: boolean;
  dataDir?: string;
}

export interface Opened {
  config: Config;
  deps: Deps;
  services: Services;
}

/**
 * What commands share: the output channel, the configuration (read exactly as the server reads
 * it, from the environment, with --data-dir standing in for BINDERY_DATA_DIR) and, opened on
 * first use, the same adapters and services the server runs on. The CLI acts as SYSTEM_CLI:
 * whoever can run it can read the data directory or database anyway.
 */
export class CliContext {
  readonly out: Output;
  readonly actor: Principal = SYSTEM_CLI;
  private globals: GlobalOptions = { json: false };
  private opened: Promise<Opened> | undefined;

  constructor(
    private readonly baseEnv: Env = process.env,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {
    this.out = new Output(process.stdout, stderr);
  }

  setGlobals(g: GlobalOptions): void {
    this.globals = { json: !!g.json, ...(g.dataDir ? { dataDir: g.dataDir } : {}) };
    this.out.json = this.globals.json;
  }

  get json(): boolean {
    return this.globals.json;
  }

  /** The environment the configuration is read from. */
  env(): Env {
    return this.globals.dataDir ? { ...this.baseEnv, BINDERY_DATA_DIR: this.globals.dataDir } : { ...this.baseEnv };
  }

  /** The validated configuration; throws ConfigError listing every problem. */
  config(): Config {
    return loadConfig(this.env());
  }

  /** Adapters and services, built once; `migrate: false` only for commands that must not change the schema. */
  open(opts: { migrate?: boolean } = {}): Promise<Opened> {
    this.opened ??= (async () => {
      const config = this.config();
      // Logs go to stderr so stdout carries only results; a CLI run is quiet unless asked otherwise.
      const logLevel = this.env().BINDERY_LOG_LEVEL ? config.logLevel : 'warn';
      const logger = createLogger({ ...config, logLevel }, this.json ? this.stderr : humanLogLines(this.stderr));
      // Loaded on first use: --help, usage errors and `config check` need none of the services.
      // (Not through the package index, which also loads the HTTP app the CLI never runs.)
      const [{ composeDeps }, { buildServices }] = await Promise.all([
        import('@bindery/server/compose.js'),
        import('@bindery/server/services.js'),
      ]);
      const deps = await composeDeps(config, { logger, migrate: opts.migrate !== false });
      return { config, deps, services: buildServices(deps) };
    })();
    return this.opened;
  }

  async services(): Promise<Services> {
    return (await this.open()).services;
  }

  progress(label: string, format?: string): Progress {
    return createProgress(label, { json: this.json, stream: this.stderr, ...(format ? { format } : {}) });
  }

  /** Closes the database pool, Redis connections and bus, if they were opened. */
  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    if (!opened) return;
    const o = await opened.catch(() => undefined);
    if (o) {
      // Events announced in the background (a batch's device.registered) are enqueued before the pool closes.
      await o.services.events.settled();
      const { closeDeps } = await import('@bindery/server/compose.js');
      await closeDeps(o.deps);
    }
  }
}
