import type { Deps } from '../../deps.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import { PROCESS_STARTED_AT, SERVER_VERSION } from '../../shared/version.js';
import type { NodeReport, PresenceRegistry } from '../gateway/presence.js';

/** How long one dependency probe may take before it counts as failed. */
const PROBE_TIMEOUT_MS = 3000;
const DAY_MS = 86_400_000;

export interface DependencyHealth {
  name: 'database' | 'bus' | 'rate_limiter';
  /** sqlite | postgres for the database; memory | redis for the others. */
  kind: string;
  ok: boolean;
  latency_ms: number;
  error: string | null;
}

export interface NodeHealth {
  node_id: string;
  /** The process that answered this request. */
  this_process: boolean;
  devices: number;
  connections: number;
  batches_generating: number;
  label_zips: number;
  version: string | null;
  started_at: string | null;
}

export type WarningCode = 'public_url_localhost' | 'no_operator_password';

export interface InstanceWarning {
  code: WarningCode;
  message: string;
}

export interface InstanceHealth {
  /** ok: every dependency answers; degraded: one does not. */
  status: 'ok' | 'degraded';
  version: string;
  node_id: string;
  started_at: string;
  uptime_sec: number;
  public_url: string;
  dependencies: DependencyHealth[];
  /** Every live process (its last heartbeat report; this one's is current). */
  nodes: NodeHealth[];
  /** Why other processes could not be listed (the presence store is away); null when they were. */
  nodes_error: string | null;
  devices_connected: number;
  queues: {
    callbacks_pending: number;
    callbacks_failed_24h: number;
    commands_pending: number;
    batches_generating: number;
    label_zips: number;
  };
  warnings: InstanceWarning[];
}

/** The gateway of this process, when there is one (the CLI has none). */
export interface LocalNode {
  readonly nodeId: string;
  report(): NodeReport;
}

/**
 * Instance health for operators: whether each dependency answers and how fast, every process with
 * its connected devices (reported through the presence heartbeat), the durable queues, and the
 * first-start warnings the console shows as a banner.
 */
export class InstanceService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'bus' | 'limiter' | 'config' | 'clock'>,
    private readonly presence: PresenceRegistry,
  ) {}

  /** `local` is this process's gateway (the HTTP app passes it; the CLI has none): read live, not from the heartbeat. */
  async health(actor: Principal, local: LocalNode | null = null): Promise<InstanceHealth> {
    requireOperator(actor);
    const redis = this.deps.config.redisUrl ? 'redis' : 'memory';
    const [dependencies, cluster, queues, warnings] = await Promise.all([
      Promise.all([
        probe('database', this.deps.db.caps.backend, () => this.deps.db.ping()),
        probe('bus', redis, () => this.deps.bus.ping?.() ?? Promise.resolve(true)),
        probe('rate_limiter', redis, () => this.deps.limiter.ping?.() ?? Promise.resolve(true)),
      ]),
      this.nodes(local),
      this.queueDepths(),
      this.findWarnings(),
    ]);
    const sum = (k: 'devices' | 'batches_generating' | 'label_zips') => cluster.nodes.reduce((n, x) => n + x[k], 0);
    return {
      status: dependencies.every((d) => d.ok) ? 'ok' : 'degraded',
      version: SERVER_VERSION,
      node_id: this.deps.config.nodeId,
      started_at: new Date(PROCESS_STARTED_AT).toISOString(),
      uptime_sec: Math.max(0, Math.floor((Date.now() - PROCESS_STARTED_AT) / 1000)),
      public_url: this.deps.config.publicUrl,
      dependencies,
      nodes: cluster.nodes,
      nodes_error: cluster.error,
      devices_connected: sum('devices'),
      queues: { ...queues, batches_generating: sum('batches_generating'), label_zips: sum('label_zips') },
      warnings,
    };
  }

  /** The first-start warnings alone, for the console's banner. */
  async warnings(actor: Principal): Promise<InstanceWarning[]> {
    requireOperator(actor);
    return this.findWarnings();
  }

  private async findWarnings(): Promise<InstanceWarning[]> {
    const out: InstanceWarning[] = [];
    const url = this.deps.config.publicUrl;
    if (isLocalUrl(url)) {
      out.push({
        code: 'public_url_localhost',
        message: `BINDERY_PUBLIC_URL is ${url}: every QR label printed now points at this machine only. Set it to the address phones reach.`,
      });
    }
    // Usable: a password hash (not a placeholder) on an operator account that is not disabled.
    const row = await this.deps.db.kysely
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('is_operator', '=', 1)
      .where('password_hash', 'like', 'scrypt$%')
      .where('disabled_at', 'is', null)
      .executeTakeFirst();
    if (Number(row?.n ?? 0) === 0) {
      out.push({
        code: 'no_operator_password',
        message: 'No operator can sign in with a password: set one (bindery operator create, or a password reset).',
      });
    }
    return out;
  }

  private async nodes(local: LocalNode | null): Promise<{ nodes: NodeHealth[]; error: string | null }> {
    const byId = new Map<string, NodeHealth>();
    let error: string | null = null;
    try {
      for (const n of await this.presence.nodes()) byId.set(n.nodeId, nodeHealth(n.nodeId, n.report, false));
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    // This process from its live figures, whatever its last heartbeat said.
    if (local) byId.set(local.nodeId, nodeHealth(local.nodeId, local.report(), true));
    const nodes = [...byId.values()].sort(
      (a, b) => Number(b.this_process) - Number(a.this_process) || a.node_id.localeCompare(b.node_id),
    );
    return { nodes, error };
  }

  private async queueDepths() {
    const db = this.deps.db.kysely;
    const now = this.deps.clock.now();
    const count = async (q: Promise<{ n: number | string } | undefined>) => Number((await q)?.n ?? 0);
    const [pending, failed, commands] = await Promise.all([
      count(
        db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .where('status', '=', 'pending')
          .executeTakeFirst(),
      ),
      count(
        db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .where('status', '=', 'failed')
          .where('finished_at', '>=', now - DAY_MS)
          .executeTakeFirst(),
      ),
      count(
        db
          .selectFrom('device_commands')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .where('delivered_at', 'is', null)
          .where('expires_at', '>', now)
          .executeTakeFirst(),
      ),
    ]);
    return { callbacks_pending: pending, callbacks_failed_24h: failed, commands_pending: commands };
  }
}

/** Whether a URL names this machine only (localhost, 127.0.0.0/8, ::1, 0.0.0.0): phones cannot reach it. */
export function isLocalUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  host = host.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127(?:\.\d{1,3}){3}$/.test(host) ||
    host === '::1' ||
    host === '0.0.0.0' ||
    host === '::' ||
    /^::ffff:127\./.test(host) ||
    /^::ffff:7f[0-9a-f]{2}:/.test(host)
  );
}

function nodeHealth(nodeId: string, r: NodeReport, thisProcess: boolean): NodeHealth {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    node_id: nodeId,
    this_process: thisProcess,
    devices: num(r.devices),
    connections: num(r.connections),
    batches_generating: num(r.batches_generating),
    label_zips: num(r.label_zips),
    version: typeof r.version === 'string' ? r.version : null,
    started_at: typeof r.started_at === 'number' ? new Date(r.started_at).toISOString() : null,
  };
}

async function probe(name: DependencyHealth['name'], kind: string, check: () => Promise<boolean>): Promise<DependencyHealth> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
    timer.unref();
  });
  let ok = false;
  let error: string | null = null;
  try {
    ok = await Promise.race([check(), timeout]);
    if (!ok) error = 'not answering';
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
  }
  return { name, kind, ok, latency_ms: Math.round((performance.now() - t0) * 100) / 100, error };
}
