import { useEffect, useState } from 'react';
import { get, type Notification } from '../../api.js';
import { type I18n, type Key, useI18n } from '../../i18n/index.js';
import { useNotifications } from '../../notifications.js';
import { Link } from '../../router.js';
import { Loading, Notice } from '../../ui.js';

const KINDS = ['device.bound', 'device.unbound', 'device.transferred', 'device.shared'];

/** Worded by the console from kind + data, so Chinese reads as Chinese; unknown kinds keep the server's text. */
function words(n: Notification, i: I18n): { title: string; body: string } {
  const d = n.data as Record<string, string | undefined>;
  if (n.kind === 'org.invite' && d.org_name) {
    const role = d.role === 'super_admin' || d.role === 'device_admin' ? d.role : 'member';
    return {
      title: i.t('notif.title.org.invite'),
      body: i.t('notif.org.invite', { by: d.by_name ?? '—', org: d.org_name, role: i.t(`role.${role}`) }),
    };
  }
  if (!KINDS.includes(n.kind)) return { title: n.title, body: n.body };
  const device = d.model_name && d.sn ? `${d.model_name} ${d.sn}` : (d.sn ?? '');
  const owner = d.owner_type === 'user' ? i.t('bind.personal') : (d.owner_name ?? '');
  return {
    title: i.t(`notif.title.${n.kind}` as Key),
    body: i.t(`notif.${n.kind}` as Key, { by: d.by_name ?? '—', device, owner }),
  };
}

export function NotificationsPage() {
  const i = useI18n();
  const { t, err, ago } = i;
  const { unread, live, markRead, live_ready } = useNotifications();
  const [loaded, setLoaded] = useState<Notification[] | null>(null);
  const [more, setMore] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [readIds, setReadIds] = useState<Set<number>>(new Set());

  const page = async (before: number | null) => {
    try {
      const r = await get<{ notifications: Notification[]; next_before: number | null }>(
        `/api/v1/notifications?limit=30${before ? `&before=${before}` : ''}`,
      );
      setLoaded((prev) => [...(before && prev ? prev : []), ...r.notifications]);
      setMore(r.next_before);
    } catch (e) {
      setError(e);
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: the first page loads once; live ones arrive over the stream
  useEffect(() => {
    page(null);
  }, []);

  const mark = async (ids: number[] | 'all') => {
    try {
      await markRead(ids);
      setReadIds((s) => new Set([...s, ...(ids === 'all' ? (loaded ?? []).map((n) => n.id) : ids)]));
      if (ids === 'all') setLoaded((l) => l?.map((n) => ({ ...n, read: true })) ?? l);
    } catch (e) {
      setError(e);
    }
  };

  // Live ones first; a notification both streamed and loaded shows once.
  const byId = new Map<number, Notification>();
  for (const n of [...live, ...(loaded ?? [])]) if (!byId.has(n.id)) byId.set(n.id, n);
  const all = [...byId.values()];
  return (
    <div className="narrow">
      <div className="page-head">
        <div>
          <h1>{t('notif.title')}</h1>
          <p className="muted" data-testid="unread-text" data-live={live_ready ? 'true' : 'false'}>
            {t('notif.unread', { n: unread })}
          </p>
        </div>
        {unread > 0 && (
          <button type="button" onClick={() => mark('all')}>
            {t('notif.markAll')}
          </button>
        )}
      </div>
      {error !== null && <Notice kind="error">{err(error)}</Notice>}
      {loaded === null ? (
        <Loading />
      ) : all.length === 0 ? (
        <p className="muted">{t('notif.empty')}</p>
      ) : (
        <ul className="notifs" data-testid="notifications">
          {all.map((n) => {
            const w = words(n, i);
            const read = n.read || readIds.has(n.id);
            return (
              <li key={n.id} className={read ? 'read' : 'unread'} data-kind={n.kind}>
                <div className="n-main">
                  <strong>{w.title}</strong>
                  <span>{w.body}</span>
                  <span className="muted small">{ago(n.created_at)}</span>
                </div>
                <div className="n-side">
                  {n.link && (
                    <Link to={n.link} className="button small">
                      {t('notif.open')}
                    </Link>
                  )}
                  {!read && (
                    <button type="button" className="small" onClick={() => mark([n.id])}>
                      {t('notif.markRead')}
                    </button>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
      {more && (
        <button type="button" onClick={() => page(more)}>
          {t('common.more')}
        </button>
      )}
    </div>
  );
}
