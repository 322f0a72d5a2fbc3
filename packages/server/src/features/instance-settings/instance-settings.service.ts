import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit, principalLabel } from '../../shared/audit.js';
import { type Principal, requireOperator } from '../../shared/principal.js';
import type { UserView } from '../accounts/accounts.service.js';
import { ANONYMOUS_FORMS, limitAnonymousForm } from '../people/access.js';
import { insertUser, type NewUserInput, newUserRow, toUserView } from '../people/users.js';

/** Settings operators change at run time, stored in the database so every process sees them. */
export interface InstanceSettings {
  /** Anyone may create an account for personal use (POST /api/v1/signup). Off by default. */
  self_signup: boolean;
}

const DEFAULTS: InstanceSettings = { self_signup: false };

/**
 * Instance settings (014_accounts, one JSON value per key) and what they open: self sign-up.
 * Reads go to the database each time; they are one primary-key lookup and change rarely, and no
 * cache means no process serves a stale switch.
 */
export class InstanceSettingsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'limiter'>) {}

  private get db() {
    return this.deps.db.kysely;
  }

  async current(): Promise<InstanceSettings> {
    const rows = await this.db.selectFrom('instance_settings').select(['key', 'value']).execute();
    const out: InstanceSettings = { ...DEFAULTS };
    for (const r of rows) {
      if (r.key === 'self_signup') out.self_signup = JSON.parse(r.value) === true;
    }
    return out;
  }

  async get(actor: Principal): Promise<InstanceSettings> {
    requireOperator(actor);
    return this.current();
  }

  async update(actor: Principal, patch: Partial<InstanceSettings>): Promise<InstanceSettings> {
    requireOperator(actor);
    const now = this.deps.clock.now();
    const changes = Object.entries(patch).filter(([k, v]) => k in DEFAULTS && v !== undefined);
    if (changes.length === 0) fail('VALIDATION_FAILED', 'Nothing to change');
    await this.db.transaction().execute(async (trx) => {
      for (const [key, v] of changes) {
        const row = { key, value: JSON.stringify(v), updated_by: principalLabel(actor), updated_at: now };
        await trx
          .insertInto('instance_settings')
          .values(row)
          .onConflict((oc) => oc.column('key').doUpdateSet({ value: row.value, updated_by: row.updated_by, updated_at: now }))
          .execute();
      }
      await audit(trx, now, actor, 'instance.settings', 'instance', Object.fromEntries(changes));
    });
    return this.current();
  }

  /** What pages shown before sign-in need to know (GET /api/v1/instance/public). */
  async publicInfo(): Promise<{ signup_open: boolean }> {
    return { signup_open: (await this.current()).self_signup };
  }

  /**
   * Self sign-up for personal use, only while an operator has it on: a new user with their
   * personal space (every user has one) and no organisation. Limited per network address.
   */
  async signup(input: NewUserInput, ip?: string | null): Promise<UserView> {
    if (!(await this.current()).self_signup) fail('SIGNUP_CLOSED');
    await limitAnonymousForm(this.deps.limiter, ANONYMOUS_FORMS.signup, ip);
    const now = this.deps.clock.now();
    const row = await newUserRow(input, now);
    await this.db.transaction().execute(async (trx) => {
      await insertUser(trx, this.deps.db.caps, row);
      await audit(trx, now, 'signup', 'user.create', row.id, { username: row.username, signup: true });
    });
    return toUserView(row);
  }
}
