import type { Kysely } from 'kysely';
import type { Database } from '../../adapters/storage/schema.js';
import type { DomainEvents } from '../../shared/domain-events.js';
import type { OrganisationsService } from '../organisations/organisations.service.js';
import type { NotificationsService } from './notifications.service.js';

/**
 * Binding events become inbox notifications (seed 004: "device bound" goes to the binder and to
 * every admin with the binding permission over the device, linking to its page). They run after
 * the binding transaction has committed; a failure here is logged by DomainEvents, never undoes it.
 */
export function registerNotificationListeners(
  events: DomainEvents,
  notifications: NotificationsService,
  orgs: OrganisationsService,
  db: Kysely<Database>,
): void {
  const names = async (sn: string, ownerType: string, ownerId: string, userIds: Array<string | null | undefined>) => {
    const d = await db
      .selectFrom('devices')
      .innerJoin('models', 'models.model_id', 'devices.model_id')
      .select(['devices.id', 'devices.sn', 'devices.remark_name', 'models.name as model_name'])
      .where('devices.sn_key', '=', sn.toLowerCase())
      .executeTakeFirst();
    const ids = userIds.filter((u): u is string => !!u);
    const users = ids.length ? await db.selectFrom('users').select(['id', 'display_name']).where('id', 'in', ids).execute() : [];
    const org =
      ownerType === 'org'
        ? await db.selectFrom('organisations').select('name').where('id', '=', ownerId).executeTakeFirst()
        : undefined;
    return {
      device: d,
      user: (id: string | null | undefined) => users.find((u) => u.id === id)?.display_name ?? null,
      ownerName: ownerType === 'org' ? (org?.name ?? ownerId) : null,
    };
  };

  events.on('device.bound', async (e) => {
    const n = await names(e.sn, e.ownerType, e.ownerId, [e.byUserId, e.ownerType === 'user' ? e.ownerId : null]);
    if (!n.device) return;
    const recipients = new Set<string>();
    if (e.byUserId) recipients.add(e.byUserId);
    if (e.ownerType === 'user') recipients.add(e.ownerId);
    else {
      const range = await orgs.deviceRange(n.device.id, e.ownerId);
      for (const a of await orgs.adminsFor(e.ownerId, range)) recipients.add(a.user_id);
    }
    const who = n.user(e.byUserId) ?? 'An operator';
    const where =
      e.ownerType === 'org'
        ? n.ownerName!
        : e.byUserId === e.ownerId
          ? 'their personal space'
          : `${n.user(e.ownerId)}'s personal space`;
    await notifications.notify(recipients, {
      kind: e.transfer ? 'device.transferred' : 'device.bound',
      title: e.transfer ? 'Device moved' : 'Device bound',
      body: `${who} bound ${n.device.model_name} ${e.sn} to ${where}.`,
      link: `/devices/${e.sn}`,
      data: {
        sn: e.sn,
        model_name: n.device.model_name,
        owner_type: e.ownerType,
        owner_id: e.ownerId,
        owner_name: n.ownerName,
        by_user_id: e.byUserId ?? null,
        by_name: n.user(e.byUserId),
        method: e.method ?? null,
      },
    });
  });

  events.on('device.unbound', async (e) => {
    // Tell whoever had the device and did not do it themselves: the member who bound it, the personal owner.
    const recipients = new Set<string>();
    if (e.boundByUserId && e.boundByUserId !== e.byUserId) {
      // A binder who has left the organisation hears nothing more about its devices.
      const stillMember =
        e.ownerType !== 'org' ||
        (await db
          .selectFrom('org_members')
          .select('user_id')
          .where('org_id', '=', e.ownerId)
          .where('user_id', '=', e.boundByUserId)
          .executeTakeFirst()) !== undefined;
      if (stillMember) recipients.add(e.boundByUserId);
    }
    if (e.ownerType === 'user' && e.ownerId !== e.byUserId) recipients.add(e.ownerId);
    if (recipients.size === 0) return;
    const n = await names(e.sn, e.ownerType, e.ownerId, [e.byUserId]);
    const who = n.user(e.byUserId) ?? 'An operator';
    await notifications.notify(recipients, {
      kind: 'device.unbound',
      title: e.transfer ? 'Device moved away' : 'Device unbound',
      body: e.transfer ? `${who} took over ${e.sn}.` : `${who} unbound ${e.sn}.`,
      link: null,
      data: {
        sn: e.sn,
        owner_type: e.ownerType,
        owner_id: e.ownerId,
        by_user_id: e.byUserId ?? null,
        by_name: n.user(e.byUserId),
      },
    });
  });

  events.on('device.shared', async (e) => {
    const n = await names(e.sn, 'user', e.ownerId, [e.userId]);
    await notifications.notify([e.ownerId, e.userId], {
      kind: 'device.shared',
      title: 'Device shared',
      body: `${n.user(e.userId) ?? 'Someone'} now also uses ${n.device?.model_name ?? 'device'} ${e.sn}.`,
      link: `/devices/${e.sn}`,
      data: { sn: e.sn, owner_id: e.ownerId, user_id: e.userId, user_name: n.user(e.userId) },
    });
  });
}
