import { randomBytes } from 'node:crypto';
import { isValidSn, snKey } from '@bindery/protocol';
import { newRedis } from '../../adapters/bus/redis-client.js';
import type { Deps } from '../../deps.js';
import { AppError, fail } from '../../errors.js';
import { audit, deviceOrg, principalLabel } from '../../shared/audit.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import type { Principal } from '../../shared/principal.js';
import type { DevicesService } from '../devices/devices.service.js';
import { type CommandRow, CommandsRepo } from './commands.repo.js';
import { defaultLimits } from './limits.js';
import { MemoryPresence, type PresenceRegistry } from './presence.js';
import { RedisPresence } from './presence.redis.js';
import { sortableId } from './sortable-id.js';

/** Every push of §A6 plus the selfhelp_notify echo (docs/protocol.md P-PUSH-*). */
export const PUSH_CMDS = [
  'push_bind_corp',
  'push_unbind_corp',
  'push_user_scan',
  'push_update_firmware',
  'push_fetch_log',
  'push_restart_device',
  'push_selfhelp_notify',
] as const;
export type PushCmd = (typeof PUSH_CMDS)[number];

/** Pushes a device receives before it has subscribed (P-PUSH-3); every other push needs a login. */
export const PRE_LOGIN_PUSHES: ReadonlySet<string> = new Set(['push_bind_corp', 'push_unbind_corp']);

/** What travels over the event bus to the process holding the device (P-CL-2). */
export interface PushMessage {
  t: 'push';
  /** SN key (lower case). */
  sn: string;
  cmd: PushCmd;
  body?: Record<string, unknown>;
  reqId: string;
  /** Set for durable commands: the holder claims it before sending (P-PUSH-5). */
  commandId?: string;
}

export interface KickMessage {
  t: 'kick';
  sn: string;
  by: string;
}

export type LocalOutcome = 'delivered' | 'absent' | 'not_subscribed' | 'already_delivered';

/** The gateway of this process, as the push service sees it. */
export interface LocalPushSink {
  deliver(msg: PushMessage): Promise<LocalOutcome>;
}

export interface PushOptions {
  /** Store the command and deliver it on the next subscribe if the device can't take it now. */
  durable?: boolean;
  /** Life of a durable command (default 1 day, at most 30 days). */
  ttlSec?: number;
  /** Who asked, for the stored command. */
  by?: string;
}

export interface PushResult {
  /**
   * delivered: written to the device's socket on this process; forwarded: sent to the process
   * holding the device; queued: stored for the next subscribe; offline: nobody holds the device
   * and the push was not durable, so it was dropped.
   */
  outcome: 'delivered' | 'forwarded' | 'queued' | 'offline';
  command_id?: string;
}

export interface CommandView {
  id: string;
  cmd: string;
  body: Record<string, unknown> | null;
  status: 'pending' | 'delivered' | 'expired' | 'failed';
  created_by: string;
  created_at: string;
  expires_at: string;
  delivered_at: string | null;
  /** P-PUSH-7: when it failed, the device's errcode (null: the cloud gave up) and the reason. */
  failed_at: string | null;
  fail_code: number | null;
  fail_reason: string | null;
}

export interface UserScan {
  userid: string;
  op_type: string;
  oper_id: string;
  state: string;
  user_type: number;
}

export const nodeTopic = (nodeId: string) => `gw.node.${nodeId}`;

let pushSeq = 0;
const pushPrefix = randomBytes(3).toString('hex');
/** req_id of a cloud-generated push (§A1.1: chosen by the cloud). */
export function newPushReqId(): string {
  pushSeq = (pushSeq + 1) % Number.MAX_SAFE_INTEGER;
  return `push_${pushPrefix}${pushSeq.toString(36)}`;
}

/**
 * Sends pushes to devices wherever their socket is (P-CL-2): the presence registry names the
 * process, the event bus carries the push there; the holder on this process gets it directly.
 * Other features call `push`; `sendCommand` is the principal-checked door for the API.
 * Binding events become push_bind_corp / push_unbind_corp here.
 */
export class DevicePushService {
  readonly presence: PresenceRegistry;
  readonly commands: CommandsRepo;
  readonly nodeId: string;
  private local: LocalPushSink | null = null;
  private readonly limits = defaultLimits();

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'bus' | 'clock' | 'config' | 'logger' | 'metrics'>,
    private readonly devices: DevicesService,
    events: DomainEvents,
    opts: { presence?: PresenceRegistry; deviceAdmins?: DeviceAdminCheck } = {},
  ) {
    this.nodeId = deps.config.nodeId;
    this.deviceAdmins = opts.deviceAdmins ?? null;
    this.commands = new CommandsRepo(deps.db.kysely);
    this.presence =
      opts.presence ??
      (deps.config.redisUrl
        ? new RedisPresence(
            newRedis(deps.config.redisUrl, { lazyConnect: true, enableAutoPipelining: true }),
            deps.config.redisPrefix,
            true,
          )
        : new MemoryPresence());
    // P-PUSH-1/2: binding changes reach the device wherever it is connected.
    events.on('device.bound', async (e) => {
      await this.push(e.sn, 'push_bind_corp', undefined, { by: e.by });
    });
    events.on('device.unbound', async (e) => {
      await this.push(e.sn, 'push_unbind_corp', undefined, { by: e.by });
    });
  }

  /** The gateway of this process registers itself here, so pushes to its devices skip the bus. */
  attachLocal(sink: LocalPushSink): void {
    this.local = sink;
  }

  detachLocal(sink: LocalPushSink): void {
    if (this.local === sink) this.local = null;
  }

  /**
   * Sends `cmd` to the device. Non-durable pushes go to whoever holds the device now or are
   * dropped (`offline`). Durable ones are stored first and delivered once: now if the device is
   * subscribed, otherwise on its next subscribe before they expire.
   */
  async push(sn: string, cmd: PushCmd, body?: Record<string, unknown>, opts: PushOptions = {}): Promise<PushResult> {
    if (!isValidSn(sn)) fail('INVALID_SN', undefined, { sn });
    if (!PUSH_CMDS.includes(cmd)) fail('VALIDATION_FAILED', `unknown push ${String(cmd)}`);
    const key = snKey(sn);
    let commandId: string | undefined;
    const binding = PRE_LOGIN_PUSHES.has(cmd);
    let deviceId: number | undefined;
    if (opts.durable || binding) {
      const d = await this.devices.repo.findBySn(sn);
      if (!d) fail('DEVICE_NOT_FOUND', `No device with SN ${sn}`);
      deviceId = d.id;
      // The newest binding change is the one that counts: an older bind/unbind still waiting
      // would undo it at the device's next subscribe.
      if (binding) await this.commands.supersede(d.id, [...PRE_LOGIN_PUSHES], this.deps.clock.now());
    }
    if (opts.durable) commandId = await this.store(deviceId!, cmd, body, opts);
    const msg: PushMessage = {
      t: 'push',
      sn: key,
      cmd,
      ...(body === undefined ? {} : { body }),
      reqId: commandId ?? newPushReqId(),
      ...(commandId ? { commandId } : {}),
    };
    let result = await this.route(msg, !!opts.durable);
    if (result === 'offline' && binding) {
      // Finding 8: a binding change the device could not be told of now (nobody holds it, or
      // Redis is away) waits in the database for its next subscribe_corp. The database is the
      // source of truth, so the bind itself never waits on Redis.
      commandId = await this.store(deviceId!, cmd, body, opts);
      result = 'queued';
    }
    this.deps.metrics.counter('bindery_gateway_pushes_total', 'Pushes by cmd and outcome', ['cmd', 'outcome']).inc({
      cmd,
      outcome: result,
    });
    return { outcome: result, ...(commandId ? { command_id: commandId } : {}) };
  }

  /** Stores a durable command (P-PUSH-5); returns its id. */
  private async store(deviceId: number, cmd: PushCmd, body: Record<string, unknown> | undefined, opts: PushOptions) {
    const now = this.deps.clock.now();
    const ttl = Math.min(Math.max(1, Math.floor(opts.ttlSec ?? this.limits.commandTtlSec)), this.limits.maxCommandTtlSec);
    const id = sortableId('cmd', now);
    await this.commands.insert({
      id,
      device_id: deviceId,
      cmd,
      body: body === undefined ? null : JSON.stringify(body),
      created_by: opts.by ?? 'system',
      created_at: now,
      expires_at: now + ttl * 1000,
      delivered_at: null,
      delivered_node: null,
      failed_at: null,
      fail_code: null,
      fail_reason: null,
    });
    return id;
  }

  private async route(msg: PushMessage, durable: boolean): Promise<PushResult['outcome']> {
    let holder: string | null;
    try {
      holder = await this.presence.lookup(msg.sn);
    } catch (err) {
      // Presence down: a durable command still waits in the database for the next subscribe.
      this.deps.logger.error({ err, sn: msg.sn }, 'presence lookup failed');
      holder = null;
    }
    if (holder === this.nodeId && this.local) {
      const r = await this.local.deliver(msg);
      if (r === 'delivered' || r === 'already_delivered') return 'delivered';
      return durable ? 'queued' : 'offline';
    }
    if (holder !== null && holder !== this.nodeId) {
      try {
        await this.deps.bus.publish(nodeTopic(holder), msg);
      } catch (err) {
        // Bus down: a durable command still waits in the database (publish failures are bounded: redis-client.ts).
        this.deps.logger.error({ err, sn: msg.sn }, 'push publish failed');
        return durable ? 'queued' : 'offline';
      }
      return 'forwarded';
    }
    return durable ? 'queued' : 'offline';
  }

  /** P-PUSH-4: restart / fetch_log from the API, for operators and the device's vendor. Always durable. */
  async sendCommand(
    actor: Principal,
    sn: string,
    kind: 'restart' | 'fetch_log',
    opts: { hint?: string; ttlSec?: number } = {},
  ): Promise<PushResult> {
    const d = await this.devices.getRow(actor, sn, 'devices.write');
    let body: Record<string, unknown> | undefined;
    if (kind === 'fetch_log') {
      const hint = opts.hint ?? '';
      if (typeof hint !== 'string' || hint.length > 256)
        fail('VALIDATION_FAILED', 'hint must be a string of at most 256 characters');
      body = { hint };
    }
    const cmd: PushCmd = kind === 'restart' ? 'push_restart_device' : 'push_fetch_log';
    const r = await this.push(d.sn, cmd, body, { durable: true, ttlSec: opts.ttlSec, by: principalLabel(actor) });
    await audit(
      this.deps.db.kysely,
      this.deps.clock.now(),
      actor,
      `device.command.${kind}`,
      `device:${d.sn}`,
      { command_id: r.command_id, outcome: r.outcome },
      deviceOrg(d),
    );
    return r;
  }

  /**
   * P-PUSH-6: a person scanned the device's login QR. Not durable: the person is waiting now.
   * The caller (the landing page) has already checked that the scanner may manage the device.
   */
  async userScan(sn: string, scan: UserScan): Promise<PushResult> {
    const problems: string[] = [];
    for (const k of ['userid', 'op_type', 'oper_id', 'state'] as const) {
      if (typeof scan[k] !== 'string' || scan[k].length > 256) problems.push(`${k} must be a string of at most 256 characters`);
    }
    if (!Number.isInteger(scan.user_type) || scan.user_type < 0) problems.push('user_type must be a non-negative integer');
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    return this.push(sn, 'push_user_scan', {
      userid: scan.userid,
      op_type: scan.op_type,
      oper_id: scan.oper_id,
      state: scan.state,
      user_type: scan.user_type,
    });
  }

  /**
   * Who else reads a device's command history: the people who manage it (its organisation's super
   * admins, device admins whose scope holds it, a personal device's owner) — the binding feature
   * decides, as it does for the reboot they may send (services.ts passes the binding service).
   */
  private readonly deviceAdmins: DeviceAdminCheck | null;

  async listCommands(actor: Principal, sn: string, limit = 50): Promise<CommandView[]> {
    const d = await this.commandReadable(actor, sn);
    const rows = await this.commands.list(d.id, Math.min(Math.max(limit, 1), 200));
    const now = this.deps.clock.now();
    return rows.map((r) => commandView(r, now));
  }

  /** The device, for its vendor (the fleet) or for those who manage it; the vendor's answer wins for a vendor. */
  private async commandReadable(actor: Principal, sn: string): Promise<{ id: number }> {
    try {
      return await this.devices.getRow(actor, sn, 'devices');
    } catch (e) {
      if (!(e instanceof AppError) || e.code !== 'FORBIDDEN' || actor.kind !== 'user' || !this.deviceAdmins) throw e;
      // Not the vendor's: a member who only sees the device is refused (403), a stranger gets 404.
      return (await this.deviceAdmins.requireAction(actor, sn, 'reboot')).device;
    }
  }

  async close(): Promise<void> {
    await this.presence.close();
  }
}

/** The binding feature's check that `actor` manages the device (the 'reboot' action: admins, not members). */
export interface DeviceAdminCheck {
  requireAction(actor: Principal, sn: string, action: 'reboot'): Promise<{ device: { id: number } }>;
}

export function commandView(r: CommandRow, now: number): CommandView {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: r.id,
    cmd: r.cmd,
    body: r.body === null ? null : (JSON.parse(r.body) as Record<string, unknown>),
    // P-PUSH-7: a failure outranks the delivery it follows.
    status: r.failed_at !== null ? 'failed' : r.delivered_at !== null ? 'delivered' : r.expires_at <= now ? 'expired' : 'pending',
    created_by: r.created_by,
    created_at: iso(r.created_at)!,
    expires_at: iso(r.expires_at)!,
    delivered_at: iso(r.delivered_at),
    failed_at: iso(r.failed_at),
    fail_code: r.fail_code,
    fail_reason: r.fail_reason,
  };
}
