import type { Kysely } from 'kysely';
import type { Database } from '../adapters/storage/schema.js';
import type { Principal } from './principal.js';

/** Appends an audit record; pass the transaction so the record commits with the change. */
export async function audit(
  db: Kysely<Database>,
  at: number,
  actor: Principal | string,
  action: string,
  subject: string,
  data?: Record<string, unknown>,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at,
      actor: typeof actor === 'string' ? actor : principalLabel(actor),
      action,
      subject,
      data: data ? JSON.stringify(data) : null,
    })
    .execute();
}

export function principalLabel(p: Principal): string {
  switch (p.kind) {
    case 'user':
      return `user:${p.userId}`;
    case 'vendor_key':
      return `vendor_key:${p.tokenId}`;
    case 'model':
      return `model:${p.modelId}`;
    case 'system':
      return `system:${p.name}`;
  }
}
