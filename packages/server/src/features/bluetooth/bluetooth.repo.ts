import type { Kysely, Selectable } from 'kysely';
import type { BluetoothTicketsTable, Database } from '../../adapters/storage/schema.js';

export type TicketRow = Selectable<BluetoothTicketsTable>;

/** Migration 023: accepted nonces and tickets. Every write takes the caller's transaction. */
export class BluetoothRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * BT-11: records `nonce` as the device's last accepted one when it is greater than the stored one;
   * false when it is not (a replay). One conditional UPDATE, so two processes given the same proof
   * at once cannot both accept it; the first proof of a device inserts, and a lost insert race
   * retries the UPDATE.
   */
  async acceptNonce(trx: Kysely<Database>, deviceId: number, nonce: number, now: number): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const up = await trx
        .updateTable('bluetooth_nonces')
        .set({ last_nonce: nonce, updated_at: now })
        .where('device_id', '=', deviceId)
        .where('last_nonce', '<', nonce)
        .executeTakeFirst();
      if (Number(up.numUpdatedRows) === 1) return true;
      const cur = await trx
        .selectFrom('bluetooth_nonces')
        .select('last_nonce')
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      if (cur) return false;
      const ins = await trx
        .insertInto('bluetooth_nonces')
        .values({ device_id: deviceId, last_nonce: nonce, updated_at: now })
        .onConflict((oc) => oc.column('device_id').doNothing())
        .executeTakeFirst();
      if (Number(ins.numInsertedOrUpdatedRows ?? 0n) === 1) return true;
    }
    return false;
  }

  async lastNonce(deviceId: number): Promise<number | null> {
    const r = await this.db
      .selectFrom('bluetooth_nonces')
      .select('last_nonce')
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return r ? Number(r.last_nonce) : null;
  }

  async insertTicket(trx: Kysely<Database>, row: TicketRow): Promise<void> {
    // Expired tickets go as new ones come: the table holds at most five minutes of reads.
    await trx.deleteFrom('bluetooth_tickets').where('expires_at', '<', row.created_at).execute();
    await trx.insertInto('bluetooth_tickets').values(row).execute();
  }

  async findTicket(hash: string): Promise<TicketRow | undefined> {
    return this.db.selectFrom('bluetooth_tickets').selectAll().where('ticket_hash', '=', hash).executeTakeFirst();
  }

  async isSpent(codeHash: string): Promise<boolean> {
    const r = await this.db.selectFrom('used_qr_codes').select('code_hash').where('code_hash', '=', codeHash).executeTakeFirst();
    return r !== undefined;
  }
}
