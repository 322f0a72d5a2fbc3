import {
  APP_SCENES,
  compileLabelTemplate,
  DEVICE_CATEGORIES,
  DEVICE_CLASSES,
  LABEL_FORMATS,
  type LabelFormat,
  labelTemplatesOverlap,
  validateLabelTemplate,
} from '@bindery/protocol';
import type { ModelsTable } from '../../adapters/storage/schema.js';
import type { Deps } from '../../deps.js';
import { fail } from '../../errors.js';
import { audit } from '../../shared/audit.js';
import { newId, newSecretNo, newToken, sha256Hex } from '../../shared/ids.js';
import { canActForVendor, type Principal, requireVendor, type VendorCapability } from '../../shared/principal.js';

export const BINDING_MODES = ['owner_only', 'shared', 'rotating'] as const;
export type BindingMode = (typeof BINDING_MODES)[number];

/** §B1: a model_ticket is renewed every 10 minutes and valid for 30; a model token for 7 200 s. */
export const TICKET_RENEW_MS = 10 * 60_000;
export const TICKET_VALID_MS = 30 * 60_000;
export const MODEL_TOKEN_TTL_SEC = 7200;

export interface ModelInput {
  name: string;
  product_key?: string;
  category_code?: string;
  class_code?: string;
  shared_seed?: boolean;
  label_format?: LabelFormat;
  label_template?: string | null;
  binding_mode?: BindingMode;
  require_check_char?: boolean;
  /** Seed-002 app scene given to devices registered under the model without one. */
  app_scene_code?: string | null;
  /** Organisations owning devices of the model may run firmware campaigns on them (docs/ota.md). */
  org_campaigns_allowed?: boolean;
}

export interface ModelView {
  model_id: string;
  vendor_id: string;
  name: string;
  product_key: string;
  category_code: string;
  category: string;
  class_code: string;
  class: string;
  shared_seed: boolean;
  label_format: LabelFormat;
  label_template: string | null;
  binding_mode: BindingMode;
  require_check_char: boolean;
  app_scene_code: string | null;
  app_scene: string | null;
  created_at: string;
  /** Archived models are listed apart and take no new devices or batches. */
  archived_at: string | null;
  org_campaigns_allowed: boolean;
}

const PK_RE = /^[0-9A-Za-z_-]{1,64}$/;

export class ModelsService {
  constructor(private readonly deps: Pick<Deps, 'db' | 'clock' | 'secrets'>) {}

  private get db() {
    return this.deps.db.kysely;
  }

  /** Creates a model; the model_secret (and seed SecretNo, when shared) is returned this once only. */
  async create(
    actor: Principal,
    vendorId: string,
    input: ModelInput,
  ): Promise<{ model: ModelView; model_secret: string; seed_secret_no?: string }> {
    requireVendor(actor, vendorId, 'models');
    const vendor = await this.db.selectFrom('vendors').select('id').where('id', '=', vendorId).executeTakeFirst();
    if (!vendor) fail('VENDOR_NOT_FOUND');
    const problems = validateModelInput(input, true);
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    const productKey = input.product_key ?? newId('p', 10).replace('_', '');
    if (input.label_format === 'custom') await this.refuseOverlap(actor, null, productKey, input.label_template ?? '');

    const modelSecret = newToken(32);
    const seed = input.shared_seed ? newSecretNo() : undefined;
    const now = this.deps.clock.now();
    const row: ModelsTable = {
      model_id: newId('mdl'),
      vendor_id: vendorId,
      name: input.name.trim(),
      product_key: productKey,
      category_code: input.category_code ?? '0',
      class_code: input.class_code ?? '0',
      secret_hash: sha256Hex(modelSecret),
      seed_secret_no_enc: seed ? this.deps.secrets.seal(seed) : null,
      label_format: input.label_format ?? 'wecom',
      label_template: input.label_format === 'custom' ? (input.label_template ?? null) : null,
      binding_mode: input.binding_mode ?? 'owner_only',
      require_check_char: input.require_check_char ? 1 : 0,
      created_at: now,
      archived_at: null,
      app_scene_code: input.app_scene_code ?? null,
      org_campaigns_allowed: input.org_campaigns_allowed ? 1 : 0,
    };
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('models').values(row).execute();
        await audit(trx, now, actor, 'model.create', row.model_id, { name: row.name, product_key: row.product_key });
      });
    } catch (e) {
      if (this.deps.db.caps.isUniqueViolation(e)) fail('PRODUCT_KEY_TAKEN');
      throw e;
    }
    return { model: modelView(row), model_secret: modelSecret, ...(seed ? { seed_secret_no: seed } : {}) };
  }

  async update(actor: Principal, modelId: string, input: Partial<ModelInput>): Promise<ModelView> {
    const current = await this.getRow(actor, modelId, 'models');
    // A stored template is checked again only when the label format or template changes.
    const labelChanged = input.label_format !== undefined || input.label_template !== undefined;
    const merged = { ...modelView(current), ...input };
    const problems = validateModelInput(labelChanged ? merged : { ...merged, label_format: undefined }, false);
    if (input.shared_seed !== undefined) problems.push('shared_seed is fixed when the model is created');
    if (input.product_key !== undefined && input.product_key !== current.product_key) {
      problems.push('product_key cannot change once set (labels carry it)');
    }
    if (problems.length) fail('VALIDATION_FAILED', problems.join('; '), { problems });
    if (labelChanged && merged.label_format === 'custom') {
      await this.refuseOverlap(actor, modelId, current.product_key, merged.label_template ?? '');
    }
    const patch: Partial<ModelsTable> = {};
    if (input.name !== undefined) patch.name = input.name.trim();
    if (input.category_code !== undefined) patch.category_code = input.category_code;
    if (input.class_code !== undefined) patch.class_code = input.class_code;
    if (input.label_format !== undefined) patch.label_format = input.label_format;
    if (input.label_template !== undefined || input.label_format !== undefined) {
      patch.label_template =
        (input.label_format ?? current.label_format) === 'custom' ? (input.label_template ?? current.label_template) : null;
    }
    if (input.binding_mode !== undefined) patch.binding_mode = input.binding_mode;
    if (input.require_check_char !== undefined) patch.require_check_char = input.require_check_char ? 1 : 0;
    if (input.app_scene_code !== undefined) patch.app_scene_code = input.app_scene_code;
    if (input.org_campaigns_allowed !== undefined) patch.org_campaigns_allowed = input.org_campaigns_allowed ? 1 : 0;
    if (Object.keys(patch).length > 0) {
      await this.db.transaction().execute(async (trx) => {
        await trx.updateTable('models').set(patch).where('model_id', '=', modelId).execute();
        await audit(trx, this.deps.clock.now(), actor, 'model.update', modelId, patch);
      });
    }
    return modelView({ ...current, ...patch });
  }

  /**
   * Custom labels are read back by their template (scan.ts): a template that could read the same
   * text as another custom model's (each with its own product key in place of `{pk}`) is refused,
   * naming that model (protocol labelTemplatesOverlap; docs/labels.md). Another vendor's model is
   * named only to operators: a vendor learns that the clash is with another vendor, not whose.
   */
  private async refuseOverlap(actor: Principal, modelId: string | null, productKey: string, template: string): Promise<void> {
    const mine = compileLabelTemplate(template, { pk: productKey });
    const others = await this.db
      .selectFrom('models')
      .select(['model_id', 'vendor_id', 'name', 'product_key', 'label_template'])
      .where('label_format', '=', 'custom')
      .where('label_template', 'is not', null)
      .execute();
    for (const o of others) {
      if (o.model_id === modelId || o.label_template === null) continue;
      if (!labelTemplatesOverlap(mine, compileLabelTemplate(o.label_template, { pk: o.product_key }))) continue;
      const named = canActForVendor(actor, o.vendor_id, 'read');
      const whom = named ? `model ${o.name} (${o.model_id}, template ${o.label_template})` : "another vendor's model";
      const problem = `label_template: labels of this template could also be read as labels of ${whom}; change a literal part so the two cannot read the same text`;
      fail('VALIDATION_FAILED', problem, { problems: [problem], ...(named ? { conflicting_model_id: o.model_id } : {}) });
    }
  }

  async get(actor: Principal, modelId: string): Promise<ModelView> {
    return modelView(await this.getRow(actor, modelId, 'read'));
  }

  /** The row, after checking the actor may act for the model's vendor in `cap` (none: vendor admins only). */
  async getRow(actor: Principal, modelId: string, cap?: VendorCapability): Promise<ModelsTable> {
    const row = await this.db.selectFrom('models').selectAll().where('model_id', '=', modelId).executeTakeFirst();
    if (!row) fail('MODEL_NOT_FOUND');
    requireVendor(actor, row.vendor_id, cap);
    return row;
  }

  /** The row of a model that still takes new devices (registration, batches): archived ones refuse. */
  async getActiveRow(actor: Principal, modelId: string, cap?: VendorCapability): Promise<ModelsTable> {
    const row = await this.getRow(actor, modelId, cap);
    if (row.archived_at != null) fail('MODEL_ARCHIVED', `Model ${row.name} is archived; restore it to register devices`);
    return row;
  }

  /**
   * Archives (or restores) a model. Its devices, labels and bindings keep working; only new
   * registrations and label batches are refused while it is archived.
   */
  async setArchived(actor: Principal, modelId: string, archived: boolean): Promise<ModelView> {
    const row = await this.getRow(actor, modelId, 'models');
    const archivedAt = archived ? (row.archived_at ?? this.deps.clock.now()) : null;
    if ((row.archived_at ?? null) !== archivedAt) {
      await this.db.transaction().execute(async (trx) => {
        await trx.updateTable('models').set({ archived_at: archivedAt }).where('model_id', '=', modelId).execute();
        await audit(trx, this.deps.clock.now(), actor, archived ? 'model.archive' : 'model.restore', modelId);
      });
    }
    return modelView({ ...row, archived_at: archivedAt });
  }

  async findByProductKey(pk: string): Promise<ModelsTable | undefined> {
    return this.db.selectFrom('models').selectAll().where('product_key', '=', pk).executeTakeFirst();
  }

  async list(actor: Principal, vendorId: string): Promise<ModelView[]> {
    requireVendor(actor, vendorId, 'read');
    const rows = await this.db
      .selectFrom('models')
      .selectAll()
      .where('vendor_id', '=', vendorId)
      .orderBy('created_at')
      .orderBy('model_id')
      .execute();
    return rows.map(modelView);
  }

  /** Replaces the model_secret; the old one stops working at once. */
  async rotateSecret(actor: Principal, modelId: string): Promise<{ model_secret: string }> {
    await this.getRow(actor, modelId, 'models');
    const modelSecret = newToken(32);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('models')
        .set({ secret_hash: sha256Hex(modelSecret) })
        .where('model_id', '=', modelId)
        .execute();
      await trx.deleteFrom('model_tokens').where('model_id', '=', modelId).execute();
      await audit(trx, this.deps.clock.now(), actor, 'model.rotate_secret', modelId);
    });
    return { model_secret: modelSecret };
  }

  /** The seed SecretNo of a shared-seed model (for flashing), or null. */
  async seedSecretNo(actor: Principal, modelId: string): Promise<string | null> {
    const row = await this.getRow(actor, modelId, 'models');
    return row.seed_secret_no_enc ? this.deps.secrets.open(row.seed_secret_no_enc) : null;
  }

  /**
   * The newest model_ticket, issuing a new one when the newest is older than the renewal
   * period (§B1). Until callbacks push it, vendors read it here (API and CLI).
   */
  async currentTicket(actor: Principal, modelId: string): Promise<{ model_ticket: string; expires_in: number }> {
    await this.getRow(actor, modelId, 'models');
    return this.ensureTicket(modelId);
  }

  async ensureTicket(modelId: string): Promise<{ model_ticket: string; expires_in: number }> {
    const now = this.deps.clock.now();
    const newest = await this.db
      .selectFrom('model_tickets')
      .selectAll()
      .where('model_id', '=', modelId)
      .orderBy('issued_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (newest && now - newest.issued_at < TICKET_RENEW_MS) {
      return {
        model_ticket: this.deps.secrets.open(newest.ticket_enc),
        expires_in: Math.floor((newest.expires_at - now) / 1000),
      };
    }
    const ticket = newToken(48);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('model_tickets')
        .values({
          ticket_hash: sha256Hex(ticket),
          ticket_enc: this.deps.secrets.seal(ticket),
          model_id: modelId,
          issued_at: now,
          expires_at: now + TICKET_VALID_MS,
        })
        .execute();
      await trx.deleteFrom('model_tickets').where('model_id', '=', modelId).where('expires_at', '<', now).execute();
    });
    return { model_ticket: ticket, expires_in: TICKET_VALID_MS / 1000 };
  }

  /** §B1 get_model_token: model_id + model_secret + a valid model_ticket → model_access_token. */
  async issueModelToken(input: {
    model_id?: unknown;
    model_secret?: unknown;
    model_ticket?: unknown;
  }): Promise<{ model_access_token: string; expires_in: number }> {
    const { model_id, model_secret, model_ticket } = input;
    if (typeof model_id !== 'string' || typeof model_secret !== 'string' || typeof model_ticket !== 'string') {
      fail('VALIDATION_FAILED', 'model_id, model_secret and model_ticket are required strings');
    }
    const row = await this.db
      .selectFrom('models')
      .select(['model_id', 'secret_hash'])
      .where('model_id', '=', model_id)
      .executeTakeFirst();
    if (!row || row.secret_hash !== sha256Hex(model_secret)) fail('INVALID_CREDENTIALS', 'model_id or model_secret is wrong');
    const now = this.deps.clock.now();
    const ticket = await this.db
      .selectFrom('model_tickets')
      .select('expires_at')
      .where('ticket_hash', '=', sha256Hex(model_ticket))
      .where('model_id', '=', model_id)
      .executeTakeFirst();
    if (!ticket || ticket.expires_at <= now) fail('INVALID_MODEL_TICKET');
    const token = newToken(48);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('model_tokens')
        .values({ token_hash: sha256Hex(token), model_id, expires_at: now + MODEL_TOKEN_TTL_SEC * 1000 })
        .execute();
      await trx.deleteFrom('model_tokens').where('model_id', '=', model_id).where('expires_at', '<', now).execute();
    });
    return { model_access_token: token, expires_in: MODEL_TOKEN_TTL_SEC };
  }

  /** model_access_token → the model principal, or an error the cgi-bin surface maps to errcode. */
  async authenticateModelToken(token: unknown): Promise<Principal & { kind: 'model' }> {
    if (typeof token !== 'string' || token.length === 0) fail('INVALID_ACCESS_TOKEN', 'model_access_token is missing');
    const row = await this.db
      .selectFrom('model_tokens')
      .innerJoin('models', 'models.model_id', 'model_tokens.model_id')
      .select(['model_tokens.model_id', 'model_tokens.expires_at', 'models.vendor_id'])
      .where('model_tokens.token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    if (!row) fail('INVALID_ACCESS_TOKEN');
    if (row.expires_at <= this.deps.clock.now()) fail('ACCESS_TOKEN_EXPIRED');
    return { kind: 'model', modelId: row.model_id, vendorId: row.vendor_id };
  }
}

function validateModelInput(input: Partial<ModelInput> & { name?: string }, creating: boolean): string[] {
  const p: string[] = [];
  if (creating || input.name !== undefined) {
    if (typeof input.name !== 'string' || input.name.trim().length < 1 || input.name.length > 128) {
      p.push('name must be 1–128 characters');
    }
  }
  if (input.product_key !== undefined && !PK_RE.test(input.product_key)) {
    p.push('product_key must be 1–64 of [0-9A-Za-z_-]');
  }
  if (input.category_code !== undefined && !(input.category_code in DEVICE_CATEGORIES)) {
    p.push(`category_code must be one of ${Object.keys(DEVICE_CATEGORIES).join(', ')}`);
  }
  if (input.class_code !== undefined && !(input.class_code in DEVICE_CLASSES)) {
    p.push(`class_code must be one of ${Object.keys(DEVICE_CLASSES).join(', ')}`);
  }
  if (input.label_format !== undefined && !LABEL_FORMATS.includes(input.label_format)) {
    p.push(`label_format must be one of ${LABEL_FORMATS.join(', ')}`);
  }
  if (input.label_format === 'custom') {
    p.push(...validateLabelTemplate(input.label_template ?? '').map((m) => `label_template: ${m}`));
  }
  if (input.app_scene_code != null && !(input.app_scene_code in APP_SCENES)) {
    p.push(`app_scene_code must be one of ${Object.keys(APP_SCENES).join(', ')}`);
  }
  if (input.binding_mode !== undefined && !BINDING_MODES.includes(input.binding_mode)) {
    p.push(`binding_mode must be one of ${BINDING_MODES.join(', ')}`);
  }
  return p;
}

export function modelView(r: ModelsTable): ModelView {
  return {
    model_id: r.model_id,
    vendor_id: r.vendor_id,
    name: r.name,
    product_key: r.product_key,
    category_code: r.category_code,
    category: DEVICE_CATEGORIES[r.category_code] ?? '',
    class_code: r.class_code,
    class: DEVICE_CLASSES[r.class_code] ?? '',
    shared_seed: r.seed_secret_no_enc !== null,
    label_format: r.label_format as LabelFormat,
    label_template: r.label_template,
    binding_mode: r.binding_mode as BindingMode,
    require_check_char: r.require_check_char === 1,
    app_scene_code: r.app_scene_code ?? null,
    app_scene: r.app_scene_code ? (APP_SCENES[r.app_scene_code] ?? null) : null,
    created_at: new Date(r.created_at).toISOString(),
    archived_at: r.archived_at == null ? null : new Date(r.archived_at).toISOString(),
    org_campaigns_allowed: r.org_campaigns_allowed === 1,
  };
}
