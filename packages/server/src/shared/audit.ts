import type { Kysely } from 'kysely';
import type { Database } from '../adapters/storage/schema.js';
import type { Principal } from './principal.js';
import { currentRequest } from './request-context.js';

/**
 * Appends an audit record; pass the transaction so the record commits with the change.
 * `orgId` names the organisation whose device, member or setting this was, so its super admins can
 * read it (GET /api/v1/orgs/{orgId}/audit); a subject `org:<id>` implies it. The request's address
 * comes from the request context the gate sets (shared/request-context.ts).
 */
export async function audit(
  db: Kysely<Database>,
  at: number,
  actor: Principal | string,
  action: string,
  subject: string,
  data?: Record<string, unknown>,
  orgId?: string | null,
): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at,
      actor: typeof actor === 'string' ? actor : principalLabel(actor),
      action,
      subject,
      data: data ? JSON.stringify(data) : null,
      org_id: orgId ?? (subject.startsWith('org:') ? subject.slice(4) : null),
      ip: currentRequest()?.ip ?? null,
    })
    .execute();
}

/** The organisation of a device's owner, for its audit records (null for a personal or free device). */
export function deviceOrg(d: { owner_type: string | null; owner_id: string | null }): string | null {
  return d.owner_type === 'org' ? d.owner_id : null;
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
