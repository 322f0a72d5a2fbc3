import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { type ErrorCode, fail, isAppError } from '../../errors.js';
import { csvChunks } from '../../shared/csv.js';
import type { Principal } from '../../shared/principal.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import { manageable } from '../organisations/permissions.js';
import type { BindingService } from './binding.service.js';
import type { DeviceCard, DeviceListQuery, DeviceManagementService } from './manage.service.js';

/** An organisation's device as its list shows it: the card plus the departments it is visible to. */
export type OrgDeviceCard = DeviceCard & { departments: Array<{ id: string; name: string }> };

/** One device's outcome in a bulk action: done, or the coded error it met. */
export type BulkResult = { sn: string; ok: true } | { sn: string; ok: false; error: { code: ErrorCode; message: string } };

export const BULK_MAX = 500;
const CSV_PAGE = 200;
const CSV_HEADER = ['sn', 'name', 'model', 'online', 'firmware_version', 'departments', 'bound_by', 'bound_at', 'last_seen_at'];

/**
 * An organisation's devices as its admins run them (issue 12): the filtered list with each
 * device's departments, its csv, and bulk unbind / move to a department. Every change goes through
 * the binding service one device at a time (its own transaction, audit record and events), so a
 * bulk action may partly succeed and reports each device's outcome.
 */
export class OrgDevicesService {
  constructor(
    private readonly deps: Pick<Deps, 'db'>,
    private readonly binding: BindingService,
    private readonly management: DeviceManagementService,
    private readonly orgs: OrganisationsService,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  async list(
    actor: Principal,
    orgId: string,
    q: DeviceListQuery,
  ): Promise<{ devices: OrgDeviceCard[]; next_cursor: string | null }> {
    const r = await this.management.listOrg(actor, orgId, q);
    return { devices: await this.withDepartments(r.devices), next_cursor: r.next_cursor };
  }

  /** The filtered list as csv; the caller and the filters are checked before the first byte. */
  async csv(actor: Principal, orgId: string, q: DeviceListQuery): Promise<AsyncGenerator<Buffer>> {
    const first = await this.list(actor, orgId, { ...q, cursor: undefined, limit: CSV_PAGE });
    const self = this;
    async function* rows() {
      yield CSV_HEADER;
      let page = first;
      for (;;) {
        for (const d of page.devices) {
          yield [
            d.sn,
            d.remark_name ?? d.default_name,
            d.model_name,
            d.online ? 'online' : 'offline',
            d.firmware_version,
            d.departments.map((x) => x.name).join('; '),
            d.bound_by?.display_name ?? null,
            d.bound_at,
            d.last_seen_at,
          ];
        }
        if (page.next_cursor === null) return;
        page = await self.list(actor, orgId, { ...q, cursor: page.next_cursor, limit: CSV_PAGE });
      }
    }
    return csvChunks(rows(), { bom: true });
  }

  /** Unbinds each device the actor manages (super admin, or a device admin whose scope holds it). */
  async bulkUnbind(actor: Principal, orgId: string, sns: string[]): Promise<{ results: BulkResult[] }> {
    await this.requireAdmin(actor, orgId);
    return this.each(orgId, sns, async (sn) => {
      await this.binding.requireAction(actor, sn, 'reboot');
      await this.binding.unbind(actor, sn);
    });
  }

  /** Makes each device visible to `departmentId` (and its sub-departments) instead of its old range. */
  async bulkMove(actor: Principal, orgId: string, sns: string[], departmentId: string): Promise<{ results: BulkResult[] }> {
    const ctx = await this.requireAdmin(actor, orgId);
    if (!ctx.tree.has(departmentId)) fail('DEPARTMENT_NOT_FOUND', `No department ${departmentId} in this organisation`);
    const reach = manageable(ctx);
    if (reach !== 'all' && !reach.has(departmentId)) fail('OUTSIDE_SCOPE');
    return this.each(orgId, sns, async (sn) => {
      await this.binding.setRange(actor, sn, { departments: [departmentId] });
    });
  }

  private async requireAdmin(actor: Principal, orgId: string) {
    const ctx = await this.orgs.context(actor, orgId);
    this.orgs.requireAdmin(ctx);
    return ctx;
  }

  /** Runs `act` for each SN of the organisation, one after another, collecting each outcome. */
  private async each(orgId: string, sns: string[], act: (sn: string) => Promise<void>): Promise<{ results: BulkResult[] }> {
    const unique = [...new Set(sns)];
    if (unique.length === 0 || unique.length > BULK_MAX) fail('VALIDATION_FAILED', `Give 1–${BULK_MAX} SNs`);
    const owned = await this.db
      .selectFrom('devices')
      .select('sn')
      .where('sn', 'in', unique)
      .where('owner_type', '=', 'org')
      .where('owner_id', '=', orgId)
      .execute();
    const inOrg = new Set(owned.map((d) => d.sn));
    const results: BulkResult[] = [];
    for (const sn of unique) {
      try {
        // Another organisation's device, or none: the same answer, so the list reveals nothing.
        if (!inOrg.has(sn)) fail('DEVICE_NOT_FOUND', `No device with SN ${sn} in this organisation`);
        await act(sn);
        results.push({ sn, ok: true });
      } catch (e) {
        if (!isAppError(e)) throw e;
        results.push({ sn, ok: false, error: { code: e.code, message: e.message } });
      }
    }
    return { results };
  }

  private async withDepartments(cards: DeviceCard[]): Promise<OrgDeviceCard[]> {
    if (cards.length === 0) return [];
    const rows = await this.db
      .selectFrom('device_visibility as v')
      .innerJoin('devices as d', 'd.id', 'v.device_id')
      .innerJoin('departments as p', 'p.id', 'v.department_id')
      .select(['d.sn', 'p.id', 'p.name'])
      .where(
        'd.sn',
        'in',
        cards.map((c) => c.sn),
      )
      .orderBy('v.id')
      .execute();
    const bySn = new Map<string, Array<{ id: string; name: string }>>();
    for (const r of rows) bySn.set(r.sn, [...(bySn.get(r.sn) ?? []), { id: r.id, name: r.name }]);
    return cards.map((c) => ({ ...c, departments: bySn.get(c.sn) ?? [] }));
  }
}
