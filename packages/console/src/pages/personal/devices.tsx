import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { type Department, type DeviceCard, type DeviceList, get, qs } from '../../api.js';
import { useI18n } from '../../i18n/index.js';
import { Link } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice, OnlineBadge } from '../../ui.js';

export function MyDevicesPage() {
  const { t } = useI18n();
  return (
    <>
      <div className="page-head">
        <h1>{t('devices.title')}</h1>
        <Link to="/scan" className="button primary">
          + {t('nav.scan')}
        </Link>
      </div>
      <DeviceListView url="/api/v1/me/devices" showOwner />
    </>
  );
}

interface Filters {
  q: string;
  online: '' | 'true' | 'false';
  department_id: string;
  bound_by_me: boolean;
}

const PAGE = 20;

/**
 * A paged device list with search (SN / IMEI prefix, remark name) and filters; the organisation
 * page adds the department and "bound by me" filters.
 */
export function DeviceListView({
  url,
  showOwner,
  departments,
}: {
  url: string;
  showOwner?: boolean;
  departments?: Department[];
}) {
  const { t, err } = useI18n();
  const [draft, setDraft] = useState<Filters>({ q: '', online: '', department_id: '', bound_by_me: false });
  const [filters, setFilters] = useState<Filters>(draft);
  const [items, setItems] = useState<DeviceCard[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(
    async (after: string | null) => {
      setBusy(true);
      setError(null);
      try {
        const r = await get<DeviceList>(
          url +
            qs({
              q: filters.q.trim(),
              online: filters.online,
              department_id: departments ? filters.department_id : '',
              bound_by_me: departments && filters.bound_by_me ? 'true' : '',
              cursor: after,
              limit: PAGE,
            }),
        );
        setItems((prev) => (after && prev ? [...prev, ...r.devices] : r.devices));
        setCursor(r.next_cursor);
      } catch (e) {
        setError(e);
      } finally {
        setBusy(false);
      }
    },
    [url, filters, departments],
  );
  useEffect(() => {
    load(null);
  }, [load]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setFilters({ ...draft });
  };

  return (
    <>
      <form className="filters" onSubmit={submit} data-testid="device-filters">
        <input
          type="search"
          name="q"
          value={draft.q}
          onChange={(e) => setDraft({ ...draft, q: e.target.value })}
          placeholder={t('devices.searchPlaceholder')}
          aria-label={t('common.search')}
        />
        <select
          name="online"
          value={draft.online}
          aria-label={t('devices.state')}
          onChange={(e) => {
            const next = { ...draft, online: e.target.value as Filters['online'] };
            setDraft(next);
            setFilters(next);
          }}
        >
          <option value="">
            {t('devices.state')}: {t('common.all')}
          </option>
          <option value="true">{t('devices.online')}</option>
          <option value="false">{t('devices.offline')}</option>
        </select>
        {departments && (
          <>
            <select
              name="department_id"
              value={draft.department_id}
              aria-label={t('devices.department')}
              onChange={(e) => {
                const next = { ...draft, department_id: e.target.value };
                setDraft(next);
                setFilters(next);
              }}
            >
              <option value="">
                {t('devices.department')}: {t('common.all')}
              </option>
              {departments.map((d) => (
                <option key={d.id} value={d.id}>
                  {d.name}
                </option>
              ))}
            </select>
            <label className="check inline">
              <input
                type="checkbox"
                checked={draft.bound_by_me}
                onChange={(e) => {
                  const next = { ...draft, bound_by_me: e.target.checked };
                  setDraft(next);
                  setFilters(next);
                }}
              />
              {t('devices.boundByMe')}
            </label>
          </>
        )}
        <button type="submit">{t('common.search')}</button>
      </form>
      {error !== null && <Notice kind="error">{err(error)}</Notice>}
      {items === null ? (
        <Loading />
      ) : items.length === 0 ? (
        <section className="card empty">
          <p>{t('devices.empty')}</p>
          <Link to="/scan" className="button primary">
            {t('devices.addFirst')}
          </Link>
        </section>
      ) : (
        <>
          <ul className="device-list" data-testid="device-list">
            {items.map((d) => (
              <DeviceRow key={d.sn} d={d} showOwner={showOwner} />
            ))}
          </ul>
          <div className="list-foot">
            <span className="muted small">{t('devices.count', { n: items.length })}</span>
            {cursor && (
              <button type="button" disabled={busy} onClick={() => load(cursor)}>
                {t('common.more')}
              </button>
            )}
          </div>
        </>
      )}
    </>
  );
}

function DeviceRow({ d, showOwner }: { d: DeviceCard; showOwner?: boolean | undefined }) {
  const { t, ago } = useI18n();
  const me = useSession().session?.user.id;
  return (
    <li>
      <Link to={`/devices/${encodeURIComponent(d.sn)}`} className="device-row" data-sn={d.sn}>
        <span className="dr-main">
          <strong>{d.remark_name ?? d.default_name}</strong>
          <span className="muted small">
            {d.model_name} · <span className="mono">{d.sn}</span>
          </span>
        </span>
        <span className="dr-side">
          <OnlineBadge online={d.online} />
          <span className="muted small">
            {d.online ? '' : t('devices.lastSeen', { when: ago(d.last_seen_at) })}
            {showOwner && (
              <>
                {d.online ? '' : ' · '}
                {/* The real owner: someone else's shared device names them, not "personal". */}
                {d.owner.type === 'user' && d.owner.id === me ? t('role.personal') : d.owner.name}
              </>
            )}
            {d.my_actions.length === 1 && d.my_actions[0] === 'view' && (
              <span className="badge badge-off" data-testid="view-only">
                {t('devices.viewOnly')}
              </span>
            )}
          </span>
        </span>
      </Link>
    </li>
  );
}
