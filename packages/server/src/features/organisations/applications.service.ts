import type { Transaction } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId } from '../../shared/ids.js';
import type { Principal } from '../../shared/principal.js';
import { checkName, type Db, type OrgStanding } from './standing.js';

export interface ApplicationView {
  id: string;
  app_key: string;
  name: string;
  admins: string[];
}

const APP_KEY_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** An organisation's applications and their admins (who may add or enable them on devices). */
export class ApplicationsService {
  constructor(
    private readonly deps: Pick<Deps, 'db' | 'clock'>,
    private readonly standing: OrgStanding,
  ) {}

  private get db(): Db {
    return this.deps.db.kysely;
  }

  async listApplications(actor: Principal, orgId: string): Promise<ApplicationView[]> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireMember(ctx);
    const apps = await this.db.selectFrom('applications').selectAll().where('org_id', '=', orgId).orderBy('app_key').execute();
    const admins = apps.length
      ? await this.db
          .selectFrom('application_admins')
          .selectAll()
          .where(
            'app_id',
            'in',
            apps.map((a) => a.id),
          )
          .execute()
      : [];
    return apps.map((a) => ({
      id: a.id,
      app_key: a.app_key,
      name: a.name,
      admins: admins
        .filter((x) => x.app_id === a.id)
        .map((x) => x.user_id)
        .sort(),
    }));
  }

  async createApplication(
    actor: Principal,
    orgId: string,
    input: { appKey: string; name: string; admins?: string[] },
  ): Promise<ApplicationView> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireSuperAdmin(ctx);
    const now = this.deps.clock.now();
    const app = await this.db.transaction().execute(async (trx) => {
      const a = await this.insertApplication(trx, orgId, input.appKey, input.name, now);
      await this.replaceAppAdmins(trx, orgId, a, input.admins ?? []);
      await audit(trx, now, actor, 'application.create', `org:${orgId}`, { app: a, app_key: input.appKey });
      return a;
    });
    return (await this.listApplications(actor, orgId)).find((a) => a.id === app)!;
  }

  /** Inserts an application (used by binding when an admin adds a model's associated app). */
  async insertApplication(
    trx: Db | Transaction<Database>,
    orgId: string,
    appKey: string,
    name: string,
    now: number,
  ): Promise<string> {
    if (!APP_KEY_RE.test(appKey)) fail('VALIDATION_FAILED', 'app_key must be 1–64 of [A-Za-z0-9_.-]');
    const id = newId('app');
    try {
      await trx
        .insertInto('applications')
        .values({ id, org_id: orgId, app_key: appKey, name: checkName(name, 'name'), created_at: now })
        .execute();
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('ALREADY_EXISTS', `The organisation already has application ${appKey}`);
      throw e;
    }
    return id;
  }

  async setApplicationAdmins(actor: Principal, orgId: string, appId: string, admins: string[]): Promise<ApplicationView> {
    const ctx = await this.standing.context(actor, orgId);
    this.standing.requireSuperAdmin(ctx);
    const app = await this.db
      .selectFrom('applications')
      .select('id')
      .where('id', '=', appId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (!app) fail('NOT_FOUND', 'No such application in this organisation');
    const now = this.deps.clock.now();
    await this.db.transaction().execute(async (trx) => {
      await this.replaceAppAdmins(trx, orgId, appId, admins);
      await audit(trx, now, actor, 'application.admins', `org:${orgId}`, { app: appId, admins });
    });
    return (await this.listApplications(actor, orgId)).find((a) => a.id === appId)!;
  }

  private async replaceAppAdmins(trx: Db | Transaction<Database>, orgId: string, appId: string, admins: string[]): Promise<void> {
    const ids = [...new Set(admins)];
    if (ids.length > 0) {
      const members = await trx
        .selectFrom('org_members')
        .select('user_id')
        .where('org_id', '=', orgId)
        .where('user_id', 'in', ids)
        .execute();
      const found = new Set(members.map((m) => m.user_id));
      const missing = ids.filter((i) => !found.has(i));
      if (missing.length) fail('VALIDATION_FAILED', `Not members of this organisation: ${missing.join(', ')}`);
    }
    await trx.deleteFrom('application_admins').where('app_id', '=', appId).execute();
    if (ids.length)
      await trx
        .insertInto('application_admins')
        .values(ids.map((user_id) => ({ app_id: appId, user_id })))
        .execute();
  }
}
