import { type FormEvent, lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { ApiError, api, get, type DevicePage as Page, post } from '../../api.js';
import { type Key, useI18n } from '../../i18n/index.js';
import { Link, useLocation } from '../../router.js';
import { useSession } from '../../session.js';
import { ReturnToApp, rememberReturn } from '../../third-party.js';
import { Loading, Notice, OnlineBadge, RoleName } from '../../ui.js';

type Msg = { kind: 'ok' | 'error'; text: string } | null;

/** The command history, for the admins who manage the device: a small chunk of its own, off the phone path. */
const DeviceCommands = lazy(() => import('./device-commands.js').then((m) => ({ default: m.DeviceCommands })));

/**
 * The device page: model, SN, online state and last seen, firmware, bound by and when, admins,
 * remark name, recent error reports and logs; the actions the caller may take (`my_actions`).
 */
export function DevicePage({ sn }: { sn: string }) {
  const { t, err, date, ago } = useI18n();
  const me = useSession().session?.user.id;
  const loc = useLocation();
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [msg, setMsg] = useState<Msg>(null);
  /** Set once this page unbound the device: what follows is its new state, or that it left one's reach. */
  const [unbound, setUnbound] = useState<string | null>(null);
  const base = `/api/v1/devices/${encodeURIComponent(sn)}`;

  const load = useCallback(async () => {
    try {
      setPage(await get<Page>(`${base}/page`));
      setError(null);
    } catch (e) {
      setError(e);
    }
  }, [base]);
  useEffect(() => {
    load();
  }, [load]);
  // The page keeps itself current: the server says when the device changed (online, firmware, commands,
  // binding), and the page reads it again through the same API (binding/device-live.ts).
  useEffect(() => {
    if (typeof EventSource === 'undefined') return;
    const es = new EventSource(`${base}/events`);
    es.addEventListener('changed', () => void load());
    return () => es.close();
  }, [base, load]);

  // Opened by a third-party application (app + redirect_uri), or arrived here from a bind it started.
  rememberReturn(loc.query);
  const justBound = loc.query.get('bound');
  const scannedBound = loc.query.get('scanned') === 'bound';
  if (error !== null) {
    const gone = error instanceof ApiError && error.status === 404;
    if (gone && unbound !== null)
      return (
        <div className="narrow">
          <Notice kind="ok" testId="device-unbound">
            {t('device.unboundGone', { name: unbound })}
          </Notice>
          <div className="row">
            <Link to="/devices" className="button primary">
              {t('notFound.home')}
            </Link>
            <Link to="/scan" className="button">
              {t('nav.scan')}
            </Link>
          </div>
        </div>
      );
    return (
      <div className="narrow">
        <Notice kind="error" testId="device-error">
          {gone ? t('device.notFound') : err(error)}
        </Notice>
        <Link to="/devices">{t('notFound.home')}</Link>
      </div>
    );
  }
  if (!page) return <Loading />;
  const d = page.device;
  const may = (a: string) => page.my_actions.includes(a as never);
  const name = d.remark_name ?? d.default_name;

  const act = async (label: Key, path: string, body?: unknown) => {
    setMsg(null);
    try {
      await post(`${base}/actions/${path}`, body);
      setMsg({ kind: 'ok', text: t('device.sent', { what: t(label) }) });
      // Read the page again: the command history shows what was just sent.
      void load();
    } catch (e) {
      setMsg({ kind: 'error', text: err(e) });
    }
  };

  return (
    <div className="device-page">
      <div className="page-head">
        <div>
          <h1 data-testid="device-name">{name}</h1>
          <p className="muted">
            {page.model.name} · <span className="mono">{d.sn}</span>
          </p>
        </div>
        <OnlineBadge online={d.online} />
      </div>
      {justBound && (
        <Notice kind="ok">
          {t(justBound === 'shared' ? 'bind.doneShared' : justBound === 'transferred' ? 'bind.doneTransferred' : 'bind.done', {
            owner: d.owner.type === 'user' ? t('bind.personal') : d.owner.name,
          })}
        </Notice>
      )}
      {scannedBound && <Notice kind="info">{t('device.scannedBound')}</Notice>}
      {justBound ? <ReturnToApp result={justBound} sn={d.sn} auto /> : <ReturnToApp result="viewed" sn={d.sn} />}
      {page.my_actions.length === 1 && may('view') && (
        <Notice kind="info" testId="read-only">
          {t('device.readOnly')}
        </Notice>
      )}
      {msg && (
        <Notice kind={msg.kind} testId="action-msg">
          {msg.text}
        </Notice>
      )}
      <div className="grid2">
        <section className="card">
          <h2>{t('device.info')}</h2>
          <dl className="facts">
            <dt>{t('bind.model')}</dt>
            <dd>{page.model.name}</dd>
            <dt>{t('bind.sn')}</dt>
            <dd className="mono">{d.sn}</dd>
            <dt>{t('device.status')}</dt>
            <dd data-testid="device-status">
              <OnlineBadge online={d.online} /> {d.online ? '' : t('devices.lastSeen', { when: ago(d.last_seen_at) })}
            </dd>
            <dt>{t('device.firmware')}</dt>
            <dd>
              {d.firmware_version ?? page.firmware.current ?? '—'}
              {page.firmware.latest && (
                <span className="muted">
                  {' '}
                  (
                  {page.firmware.upgrade_available
                    ? t('device.firmwareLatest', { v: page.firmware.latest.version })
                    : t('device.firmwareUpToDate')}
                  )
                </span>
              )}
            </dd>
            {d.device_key && (
              <>
                <dt>{t('device.imei')}</dt>
                <dd className="mono">{d.device_key}</dd>
              </>
            )}
            <dt>{t('devices.owner')}</dt>
            <dd data-testid="device-owner">{d.owner.type === 'user' && d.owner.id === me ? t('bind.personal') : d.owner.name}</dd>
            <dt>{t('device.boundAt')}</dt>
            <dd data-testid="bound-by">
              {t('device.boundByWhen', { who: d.bound_by?.display_name ?? '—', when: date(d.bound_at) })}
            </dd>
            <dt>{t('device.remark')}</dt>
            <dd>{d.remark_name ?? '—'}</dd>
            <dt>{t('device.admins')}</dt>
            <dd>
              {page.admins.length === 0
                ? t('common.none')
                : page.admins.map((a, i) => (
                    <span key={a.user_id}>
                      {i > 0 && ', '}
                      {a.display_name} (<RoleName role={a.role} />)
                    </span>
                  ))}
            </dd>
            {page.users.length > 1 && (
              <>
                <dt>{t('device.users')}</dt>
                <dd data-testid="device-users">
                  {page.users.map((u) => (
                    <span key={u.user_id} className="share">
                      {u.display_name}
                      {u.role === 'owner' ? ` (${t('device.owner')})` : ''}
                      {u.role === 'user' && may('unbind') && page.users[0]?.role === 'owner' && d.owner.type === 'user' && (
                        <RemoveShare base={base} userId={u.user_id} name={u.display_name} onDone={load} setMsg={setMsg} />
                      )}
                    </span>
                  ))}
                </dd>
              </>
            )}
            {d.owner.type === 'org' && (
              <>
                <dt>{t('device.visibleTo')}</dt>
                <dd>
                  {[...page.visible_to.departments.map((x) => x.name), ...page.visible_to.users.map((u) => u.display_name)].join(
                    ', ',
                  ) || '—'}
                </dd>
              </>
            )}
            {page.application && (
              <>
                <dt>{t('device.application')}</dt>
                <dd>{page.application.name}</dd>
              </>
            )}
          </dl>
        </section>
        <section className="card">
          <h2>{t('device.actions')}</h2>
          {may('rename') && <Rename base={base} current={d.remark_name ?? ''} onDone={load} setMsg={setMsg} />}
          <div className="actions">
            {may('firmware_upgrade') && (
              <button type="button" onClick={() => act('device.upgrade', 'upgrade-firmware')} disabled={!page.firmware.latest}>
                {t('device.upgrade')}
              </button>
            )}
            {may('reboot') && (
              <button type="button" onClick={() => act('device.reboot', 'reboot')}>
                {t('device.reboot')}
              </button>
            )}
            {may('fetch_log') && (
              <button type="button" onClick={() => act('device.fetchLog', 'fetch-log', {})}>
                {t('device.fetchLog')}
              </button>
            )}
          </div>
          {may('unbind') && (
            <Unbind
              base={base}
              name={name}
              setMsg={setMsg}
              onDone={() => {
                setUnbound(name);
                void load();
              }}
            />
          )}
        </section>
      </div>
      {may('reboot') && (
        <Suspense fallback={null}>
          <DeviceCommands sn={d.sn} version={page} />
        </Suspense>
      )}
      <section className="card">
        <h2>{t('device.errors')}</h2>
        {page.error_reports.length === 0 ? (
          <p className="muted">{t('device.noErrors')}</p>
        ) : (
          <table className="table" data-testid="error-reports">
            <tbody>
              {page.error_reports.map((r) => (
                <tr key={r.id}>
                  <td className="mono code">{r.errcode}</td>
                  <td className="wrap">{r.errmsg}</td>
                  <td className="muted nowrap">{date(r.reported_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {may('fetch_log') && (
        <section className="card">
          <h2>{t('device.logs')}</h2>
          {page.logs.length === 0 ? (
            <p className="muted">{t('device.noLogs')}</p>
          ) : (
            <table className="table">
              <tbody>
                {page.logs.map((l) => (
                  <tr key={l.id}>
                    <td className="muted nowrap">{date(l.uploaded_at)}</td>
                    <td>{(l.size / 1024).toFixed(1)} KB</td>
                    <td>
                      <a href={`${base}/page/logs/${encodeURIComponent(l.id)}`}>{t('device.download')}</a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      )}
    </div>
  );
}

function Rename({
  base,
  current,
  onDone,
  setMsg,
}: {
  base: string;
  current: string;
  onDone: () => void;
  setMsg: (m: Msg) => void;
}) {
  const { t, err } = useI18n();
  const [v, setV] = useState(current);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api('PUT', `${base}/remark-name`, { remark_name: v.trim() });
      setMsg({ kind: 'ok', text: t('device.renamed') });
      onDone();
    } catch (x) {
      setMsg({ kind: 'error', text: err(x) });
    }
  };
  return (
    <form className="inline-form" onSubmit={submit}>
      <label>
        {t('device.remark')}
        <span className="row">
          <input name="remark_name" value={v} maxLength={64} onChange={(e) => setV(e.target.value)} />
          <button type="submit">{t('common.save')}</button>
        </span>
      </label>
    </form>
  );
}

function Unbind({ base, name, setMsg, onDone }: { base: string; name: string; setMsg: (m: Msg) => void; onDone: () => void }) {
  const { t, err } = useI18n();
  const [asking, setAsking] = useState(false);
  const go = async () => {
    try {
      await api('DELETE', `${base}/bind`);
      setMsg({ kind: 'ok', text: t('device.unbound') });
      // Show what the device is now (or that it left this person's reach), never the old actions.
      onDone();
    } catch (x) {
      setMsg({ kind: 'error', text: err(x) });
    }
  };
  return (
    <div className="danger-zone">
      {asking ? (
        <>
          <p>{t('device.unbindConfirm', { name })}</p>
          <div className="row">
            <button type="button" className="danger" onClick={go} data-testid="unbind-confirm">
              {t('device.unbind')}
            </button>
            <button type="button" onClick={() => setAsking(false)}>
              {t('common.cancel')}
            </button>
          </div>
        </>
      ) : (
        <button type="button" className="danger-outline" onClick={() => setAsking(true)}>
          {t('device.unbind')}
        </button>
      )}
    </div>
  );
}

function RemoveShare({
  base,
  userId,
  name,
  onDone,
  setMsg,
}: {
  base: string;
  userId: string;
  name: string;
  onDone: () => void;
  setMsg: (m: Msg) => void;
}) {
  const { t, err } = useI18n();
  const go = async () => {
    if (!window.confirm(t('device.removeShareConfirm', { name }))) return;
    try {
      await api('DELETE', `${base}/users/${encodeURIComponent(userId)}`);
      setMsg({ kind: 'ok', text: t('device.shareRemoved', { name }) });
      onDone();
    } catch (x) {
      setMsg({ kind: 'error', text: err(x) });
    }
  };
  return (
    <button type="button" className="link-btn" onClick={go} data-testid={`remove-share-${userId}`}>
      {t('device.removeShare')}
    </button>
  );
}
