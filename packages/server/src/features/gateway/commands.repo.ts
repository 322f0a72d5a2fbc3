import type { Kysely, Selectable } from 'kysely';
import type { Database, DeviceCommandsTable } from '../../adapters/storage/schema.js';
import { arg, precompile } from './compiled.js';

export type CommandRow = Selectable<DeviceCommandsTable>;

/** Longest failure reason kept (P-PUSH-7): a device's errmsg is cut here. */
export const FAIL_REASON_MAX = 256;

/**
 * Durable commands (P-PUSH-5). Delivery is a conditional UPDATE — `delivered_at IS NULL` and
 * not expired — so however many processes race (a live push and a subscribe elsewhere), one
 * wins and the device gets the command once.
 */
export class CommandsRepo {
  /** Asked on every subscribe (P-PERF-1): compiled once. */
  private readonly pendingIds;

  constructor(private readonly db: Kysely<Database>) {
    this.pendingIds = precompile<{ id: string }>(
      db,
      db
        .selectFrom('device_commands')
        .select('id')
        .where('device_id', '=', arg<number>(0))
        .where('delivered_at', 'is', null)
        .where('expires_at', '>', arg<number>(1)),
    );
  }

  async insert(row: CommandRow): Promise<void> {
    await this.db.insertInto('device_commands').values(row).execute();
  }

  /** Ends (expires now) the pending commands of a device among `cmds`: a newer one replaces them. */
  async supersede(deviceId: number, cmds: readonly string[], now: number): Promise<void> {
    await this.db
      .updateTable('device_commands')
      .set({ expires_at: now })
      .where('device_id', '=', deviceId)
      .where('cmd', 'in', cmds)
      .where('delivered_at', 'is', null)
      .where('expires_at', '>', now)
      .execute();
  }

  /** Marks one command delivered; true when this caller won it. */
  async claim(id: string, now: number, nodeId: string): Promise<boolean> {
    const r = await this.db
      .updateTable('device_commands')
      .set({ delivered_at: now, delivered_node: nodeId })
      .where('id', '=', id)
      .where('delivered_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /**
   * P-PUSH-7: ends a delivered command of `deviceId` as failed, with the device's errcode (null when
   * no device answered) and a reason cut to FAIL_REASON_MAX code points (never half a character).
   * Only the first failure counts; an id that is not this device's, or not delivered yet, changes
   * nothing. The command's cmd when this call recorded the failure, else null.
   */
  async fail(id: string, deviceId: number, now: number, code: number | null, reason: string): Promise<string | null> {
    const r = await this.db
      .updateTable('device_commands')
      .set({ failed_at: now, fail_code: code, fail_reason: Array.from(reason).slice(0, FAIL_REASON_MAX).join('') })
      .where('id', '=', id)
      .where('device_id', '=', deviceId)
      .where('delivered_at', 'is not', null)
      .where('failed_at', 'is', null)
      .returning('cmd')
      .executeTakeFirst();
    return r?.cmd ?? null;
  }

  /**
   * Claims every pending, unexpired command of a device, oldest first. A plain read comes
   * first so the common case (nothing pending) costs no write.
   */
  async claimPending(deviceId: number, now: number, nodeId: string): Promise<CommandRow[]> {
    const pending = (await this.pendingIds(deviceId, now)).rows;
    if (pending.length === 0) return [];
    const claimed = await this.db
      .updateTable('device_commands')
      .set({ delivered_at: now, delivered_node: nodeId })
      .where(
        'id',
        'in',
        pending.map((p) => p.id),
      )
      .where('delivered_at', 'is', null)
      .where('expires_at', '>', now)
      .returningAll()
      .execute();
    return claimed.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : 1));
  }

  async list(deviceId: number, limit: number): Promise<CommandRow[]> {
    return this.db
      .selectFrom('device_commands')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
  }

  /** Removes commands that ended (delivered, failed or expired) before `before`; a failed one was delivered first. */
  async purge(before: number): Promise<number> {
    const r = await this.db
      .deleteFrom('device_commands')
      .where((eb) =>
        eb.or([eb('delivered_at', '<', before), eb.and([eb('delivered_at', 'is', null), eb('expires_at', '<', before)])]),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
