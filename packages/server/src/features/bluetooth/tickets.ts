import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { sha256Hex } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import { BIND_LOCKOUT, type PossessionTickets } from '../binding/bind-proof.js';
import { Lockout, type LockoutKeys } from '../people/lockout.js';
import { BluetoothRepo, type TicketRow } from './bluetooth.repo.js';

/**
 * The tickets an accepted identity proof gives (BT-12): what POST /api/v1/bind redeems as proof of
 * possession. Made before the binding service, which takes it at construction. Unknown tickets
 * count as guesses on the binding lockout (the same shared counters as the binding service's).
 */
export class BluetoothTickets implements PossessionTickets {
  readonly repo: BluetoothRepo;
  private readonly lockout: Lockout;

  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'limiter'>) {
    this.repo = new BluetoothRepo(deps.db.kysely);
    this.lockout = new Lockout(deps.limiter, BIND_LOCKOUT);
  }

  /** BT-12: the ticket as POST /api/v1/bind redeems it; single use through the bind's transaction. */
  async redeem(actor: Principal, ticket: string, keys: LockoutKeys) {
    const row = await this.usable(actor, ticket, keys);
    const spend = { hash: sha256Hex(`bt-ticket|${row.ticket_hash}`), snKey: '', expiresAt: Number(row.expires_at) };
    if (await this.repo.isSpent(spend.hash))
      fail('BT_TICKET_INVALID', 'This Bluetooth ticket was used already; find the device again');
    const device = await this.deps.db.kysely.selectFrom('devices').selectAll().where('id', '=', row.device_id).executeTakeFirst();
    if (!device) fail('BT_TICKET_INVALID');
    return { device, spend: { ...spend, snKey: device.sn_key } };
  }

  /** Unknown tickets count as guesses when `keys` are given; another account's and expired ones are refused alike. */
  async usable(actor: Principal, ticket: string, keys: LockoutKeys | null): Promise<TicketRow> {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person holds Bluetooth tickets');
    const row = typeof ticket === 'string' && ticket.length <= 128 ? await this.repo.findTicket(sha256Hex(ticket)) : undefined;
    if (!row) {
      if (keys) await this.lockout.fail(keys);
      fail('BT_TICKET_INVALID');
    }
    if (row.user_id !== actor.userId) fail('BT_TICKET_INVALID');
    if (Number(row.expires_at) <= this.deps.clock.now()) {
      fail('BT_TICKET_INVALID', 'This Bluetooth ticket has expired (tickets last 5 minutes); find the device again');
    }
    return row;
  }
}
