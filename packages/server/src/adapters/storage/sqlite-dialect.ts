import { type DatabaseConnection, type Driver, SqliteDialect, type SqliteDialectConfig, SqliteDriver } from 'kysely';

/**
 * Kysely's SQLite driver guards its single connection with a mutex whose waiters all wake on
 * every release and re-check in a loop (kysely 0.28). With hundreds of queries waiting — a fleet
 * powering on keeps ~250 devices mid-flow per process — every query then costs a wake-up and a
 * new promise per waiter: a quarter of the gateway's CPU went there. This driver admits callers
 * one at a time, first come first served, handing the connection straight to the next waiter,
 * so Kysely's own mutex never has a queue.
 */
export class FairSqliteDialect extends SqliteDialect {
  constructor(private readonly config: SqliteDialectConfig) {
    super(config);
  }

  override createDriver(): Driver {
    return new FairSqliteDriver(this.config);
  }
}

class FairSqliteDriver extends SqliteDriver {
  private readonly waiting: Array<() => void> = [];
  private held = false;

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.held) await new Promise<void>((admit) => this.waiting.push(admit));
    else this.held = true;
    try {
      return await super.acquireConnection();
    } catch (e) {
      this.handOver();
      throw e;
    }
  }

  override async releaseConnection(): Promise<void> {
    await super.releaseConnection();
    this.handOver();
  }

  /** The next waiter gets the connection without it ever being free (no overtaking). */
  private handOver(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held = false;
  }
}
