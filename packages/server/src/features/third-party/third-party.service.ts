import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import type { Principal } from '../../shared/principal.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';

/** How many return origins one application may register. */
export const MAX_ORIGINS = 20;

/**
 * Third-party entry (seed 004's client APIs 添加硬件 / 查看设备; issue 15, item 3): an organisation's
 * application opens the add-device flow or a device's page with `app` and `redirect_uri`, and the
 * person comes back to the app with the outcome. Only to an origin its super admins registered: the
 * console asks this service before it leaves for `redirect_uri` (an open redirect is refused).
 * Binding itself is unchanged: the same service and member rules whoever opened the page.
 */
export class ThirdPartyService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    private readonly orgs: OrganisationsService,
  ) {}

  private get db(): Kysely<Database> {
    return this.deps.db.kysely;
  }

  private async app(orgId: string, appId: string) {
    const a = await this.db
      .selectFrom('applications')
      .selectAll()
      .where('id', '=', appId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (!a) fail('NOT_FOUND', 'No such application in this organisation');
    return a;
  }

  async listOrigins(actor: Principal, orgId: string, appId: string): Promise<string[]> {
    const ctx = await this.orgs.context(actor, orgId);
    if (!ctx.isOperator && ctx.role === null) fail('ORG_NOT_FOUND');
    await this.app(orgId, appId);
    const rows = await this.db
      .selectFrom('application_origins')
      .select('origin')
      .where('app_id', '=', appId)
      .orderBy('origin')
      .execute();
    return rows.map((r) => r.origin);
  }

  /** Replaces the application's return origins (super admins). Each is an exact http(s) origin. */
  async setOrigins(actor: Principal, orgId: string, appId: string, origins: string[]): Promise<string[]> {
    const ctx = await this.orgs.context(actor, orgId);
    if (!ctx.isOperator && ctx.role !== 'super_admin')
      fail('FORBIDDEN', 'Only a super admin sets where an application may send people back');
    const app = await this.app(orgId, appId);
    if (origins.length > MAX_ORIGINS) fail('VALIDATION_FAILED', `At most ${MAX_ORIGINS} origins per application`);
    const clean = [...new Set(origins.map(parseOrigin))].sort();
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('application_origins').where('app_id', '=', appId).execute();
      if (clean.length)
        await trx
          .insertInto('application_origins')
          .values(clean.map((origin) => ({ app_id: appId, origin, created_at: now })))
          .execute();
      await audit(trx, now, actor, 'application.origins', `application:${app.app_key}`, { origins: clean, org_id: orgId });
    });
    return clean;
  }

  /**
   * Whether `redirectUri` may receive this person back from application `appKey`: its origin is
   * registered by an application of that key in an organisation the person belongs to.
   */
  async checkReturn(actor: Principal, appKey: string, redirectUri: string): Promise<{ redirect_uri: string; app_name: string }> {
    if (actor.kind !== 'user') fail('FORBIDDEN', 'Only a signed-in person returns to an application');
    let url: URL;
    try {
      url = new URL(redirectUri);
    } catch {
      fail('REDIRECT_NOT_ALLOWED', 'redirect_uri is not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') fail('REDIRECT_NOT_ALLOWED', 'redirect_uri must be http(s)');
    const row = await this.db
      .selectFrom('applications as a')
      .innerJoin('application_origins as o', 'o.app_id', 'a.id')
      .innerJoin('org_members as m', 'm.org_id', 'a.org_id')
      .select(['a.name'])
      .where('a.app_key', '=', appKey)
      .where('o.origin', '=', url.origin)
      .where('m.user_id', '=', actor.userId)
      .executeTakeFirst();
    if (!row) fail('REDIRECT_NOT_ALLOWED');
    return { redirect_uri: url.toString(), app_name: row.name };
  }
}

/** `https://app.example:8443/path` → `https://app.example:8443`; anything else than an http(s) origin is refused. */
export function parseOrigin(s: string): string {
  let u: URL;
  try {
    u = new URL(s.trim());
  } catch {
    fail('VALIDATION_FAILED', `Not an origin: ${s.slice(0, 100)}`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password) {
    fail('VALIDATION_FAILED', `An origin is http(s)://host[:port]: ${s.slice(0, 100)}`);
  }
  return u.origin;
}
