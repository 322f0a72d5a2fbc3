import { isValidSn } from '@bindery/protocol';
import { BtFormatError, base64ToBytes, parseIdentityProof } from '@bindery/protocol/bluetooth';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { newToken, sha256Hex } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import type { BindingService, NetContext } from '../binding/binding.service.js';
import type { DeviceManagementService, ScanResolution } from '../binding/manage.service.js';
import type { DeviceRow, KyselyDevicesRepo } from '../devices/devices.repo.js';
import type { PresenceRegistry } from '../gateway/presence.js';
import type { BluetoothRepo } from './bluetooth.repo.js';
import type { BluetoothTickets } from './tickets.js';
import { proofSignedBy } from './verifier.js';

/** BT-12: how long a ticket from an accepted proof stays good (freshness of the proof of possession). */
export const BT_TICKET_TTL_MS = 5 * 60_000;

export interface BluetoothIdentity {
  sn: string;
  model: { model_id: string; name: string; product_key: string };
  bound: boolean;
  online: boolean;
  /** Only to those who may see the device already. */
  owner?: { type: 'org' | 'user'; id: string };
  /** What POST /api/v1/scan/resolve answers for a label of this device: the bind confirmation's input. */
  bind_options: ScanResolution;
  ticket: string;
  ticket_expires_at: string;
}

export interface TicketStatus {
  online: boolean;
  firmware_version?: string;
}

/**
 * Bluetooth discovery (issue 15, docs/protocol.md BT): verifies the identity proof a person's phone
 * read from a device's 0xFCC9 characteristic — signed with the device's SecretNo (BT-4), nonce
 * greater than the last one accepted (BT-11) — and gives a ticket bound to that person for five
 * minutes (BT-12). The ticket is what POST /api/v1/bind takes as proof of possession (method
 * `bluetooth`) and what the discovery page polls while the device joins Wi-Fi and comes online.
 * Forged proofs and unknown tickets count towards the binding lockout.
 */
export class BluetoothService {
  readonly repo: BluetoothRepo;

  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets' | 'logger'>,
    private readonly binding: BindingService,
    private readonly management: DeviceManagementService,
    private readonly devices: KyselyDevicesRepo,
    private readonly presence: PresenceRegistry,
    private readonly tickets: BluetoothTickets,
  ) {
    this.repo = tickets.repo;
  }

  async identify(actor: Principal, proofBase64: string, net: NetContext = {}): Promise<BluetoothIdentity> {
    // Like a scan: for a person who then binds; a vendor key learns nothing here.
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person can identify a device over Bluetooth');
    const keys = this.binding.lockoutKeys(actor, net);
    await this.binding.lockout.check(keys);
    let proof: ReturnType<typeof parseIdentityProof>;
    try {
      proof = parseIdentityProof(base64ToBytes(proofBase64));
    } catch (e) {
      if (e instanceof BtFormatError) fail('VALIDATION_FAILED', `Not a Bluetooth identity proof (BT-6): ${e.message}`);
      throw e;
    }
    const d = isValidSn(proof.sn) ? await this.devices.findBySn(proof.sn) : undefined;
    const model = d
      ? await this.deps.db.kysely.selectFrom('models').selectAll().where('model_id', '=', d.model_id).executeTakeFirst()
      : undefined;
    // An unknown SN, another model's product key and a wrong sign are one answer: guessing learns nothing.
    // BT-5: proofs carry even nonces; an odd one is a check-in advert's sign, overheard on the air.
    if (
      !d ||
      !model ||
      model.product_key !== proof.productKey ||
      proof.nonce % 2 !== 0 ||
      !proofSignedBy(proof, this.deps.secrets.open(d.secret_no_enc))
    ) {
      await this.binding.lockout.fail(keys);
      fail('BT_PROOF_INVALID');
    }
    const now = this.deps.clock.now();
    const ticket = newToken();
    const expiresAt = now + BT_TICKET_TTL_MS;
    await this.deps.db.kysely.transaction().execute(async (trx) => {
      if (!(await this.repo.acceptNonce(trx, d.id, proof.nonce, now))) fail('BT_PROOF_REPLAYED'); // BT-11
      await this.repo.insertTicket(trx, {
        ticket_hash: sha256Hex(ticket),
        device_id: d.id,
        user_id: actor.userId,
        nonce: proof.nonce,
        created_at: now,
        expires_at: expiresAt,
      });
    });
    const [bindOptions, online, access] = await Promise.all([
      this.management.describe(actor, { kind: 'bluetooth', validity: 'ok', device: d, model }),
      this.isOnline(d),
      d.owner_id !== null ? this.binding.access(actor, d) : null,
    ]);
    return {
      sn: d.sn,
      model: { model_id: model.model_id, name: model.name, product_key: model.product_key },
      bound: d.owner_id !== null,
      online,
      ...(access?.actions.has('view') && d.owner_type !== null && d.owner_id !== null
        ? { owner: { type: d.owner_type as 'org' | 'user', id: d.owner_id } }
        : {}),
      bind_options: bindOptions,
      ticket,
      ticket_expires_at: new Date(expiresAt).toISOString(),
    };
  }

  /** Whether the ticket's device is online now (the discovery page polls this while provisioning). */
  async ticketStatus(actor: Principal, ticket: string): Promise<TicketStatus> {
    const row = await this.tickets.usable(actor, ticket, null);
    const d = await this.deps.db.kysely.selectFrom('devices').selectAll().where('id', '=', row.device_id).executeTakeFirst();
    if (!d) fail('BT_TICKET_INVALID');
    const online = await this.isOnline(d);
    return { online, ...(d.firmware_version ? { firmware_version: d.firmware_version } : {}) };
  }

  /** The presence registry knows at once which process holds the device's socket; the stored flag lags by a flush. */
  private async isOnline(d: DeviceRow): Promise<boolean> {
    try {
      return (await this.presence.lookup(d.sn_key)) !== null;
    } catch (err) {
      this.deps.logger.warn({ err }, 'presence lookup failed; using the stored online flag');
      return d.online === 1;
    }
  }
}
