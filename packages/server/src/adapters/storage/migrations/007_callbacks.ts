import type { Kysely } from 'kysely';
import type { StorageCapabilities } from '../capabilities.js';

/**
 * Vendor callbacks and webhooks (issue 5, docs/callbacks.md): WeCom-style callback endpoints per
 * model and per vendor, signed JSON webhooks, the durable outbox every event goes through, and
 * the log of each delivery attempt.
 */
export async function up(db: Kysely<unknown>, caps: StorageCapabilities): Promise<void> {
  // id is `model:<model_id>` (the model URL) or `vendor:<vendor_id>` (the provider general URL).
  await db.schema
    .createTable('callback_endpoints')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id').onDelete('cascade'))
    .addColumn('model_id', 'text', (c) => c.references('models.model_id').onDelete('cascade'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('token_enc', 'text', (c) => c.notNull())
    .addColumn('aes_key_enc', 'text', (c) => c.notNull())
    .addColumn('verify_device', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('callback_endpoints_vendor').on('callback_endpoints').columns(['vendor_id', 'kind']).execute();

  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('owner_type', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    // JSON array of event types; null = every lifecycle event.
    .addColumn('events', 'text')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('disabled_at', 'bigint')
    .execute();
  await db.schema.createIndex('webhooks_owner').on('webhooks').columns(['owner_type', 'owner_id']).execute();

  // seq orders deliveries; one ordering_key (target + device) is delivered strictly in seq order.
  await caps
    .serialId(db.schema.createTable('outbox'), 'seq')
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('vendor_id', 'text')
    .addColumn('org_id', 'text')
    .addColumn('target_kind', 'text', (c) => c.notNull())
    .addColumn('target_id', 'text', (c) => c.notNull())
    .addColumn('ordering_key', 'text', (c) => c.notNull())
    .addColumn('sn', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    // The plaintext body, sealed: bind and user_scan carry auth codes.
    .addColumn('payload_enc', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('give_up_at', 'bigint', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('last_http_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('reply', 'text')
    // A redelivery on request is a new row that points at the original.
    .addColumn('redelivery_of', 'text')
    .execute();
  await db.schema.createIndex('outbox_due').on('outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('outbox_order').on('outbox').columns(['ordering_key', 'status', 'seq']).execute();
  await db.schema.createIndex('outbox_vendor').on('outbox').columns(['vendor_id', 'seq']).execute();
  await db.schema.createIndex('outbox_org').on('outbox').columns(['org_id', 'seq']).execute();

  await caps
    .serialId(db.schema.createTable('delivery_attempts'), 'id')
    .addColumn('outbox_seq', 'integer', (c) => c.notNull().references('outbox.seq').onDelete('cascade'))
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('http_status', 'integer')
    .addColumn('errcode', 'integer')
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('delivery_attempts_outbox').on('delivery_attempts').columns(['outbox_seq', 'id']).execute();
}
