import { useEffect, useState } from 'react';
import { get } from '../../api.js';
import { type Key, useI18n } from '../../i18n/index.js';
import { Notice } from '../../ui.js';

/** One command as GET /api/v1/devices/{sn}/commands gives it. */
interface Command {
  id: string;
  cmd: string;
  status: 'pending' | 'delivered' | 'expired' | 'failed';
  created_at: string;
  expires_at: string;
  delivered_at: string | null;
  failed_at: string | null;
  /** The device's errcode; null when the cloud gave up (the connection closed before it was written). */
  fail_code: number | null;
  fail_reason: string | null;
}

const FIRST = 20;
const ALL = 200;
const NAMED = new Set([
  'push_restart_device',
  'push_fetch_log',
  'push_update_firmware',
  'push_bind_corp',
  'push_unbind_corp',
  'push_user_scan',
  'push_selfhelp_notify',
]);
const BADGE: Record<Command['status'], string> = {
  pending: 'badge-wait',
  delivered: 'badge-on',
  expired: 'badge-off',
  failed: 'badge-fail',
};

/**
 * A device's command history for the admins who manage it (issue 13 item 9): what was asked of
 * the device — by them, the vendor or a binding — with its outcome (waiting while the device is
 * offline, delivered, expired, failed with the device's error: P-PUSH-7) and when. Its own small
 * chunk: only admins load it. `version` changes whenever the page read the device again (its live
 * events), and the list follows.
 */
export function DeviceCommands({ sn, version }: { sn: string; version: unknown }) {
  const { t, err, date } = useI18n();
  const [limit, setLimit] = useState(FIRST);
  const [commands, setCommands] = useState<Command[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `version` is the page's own reload; the history is read again with it
  useEffect(() => {
    let live = true;
    get<{ commands: Command[] }>(`/api/v1/devices/${encodeURIComponent(sn)}/commands?limit=${limit}`)
      .then((r) => {
        if (!live) return;
        setCommands(r.commands);
        setError(null);
      })
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [sn, limit, version]);

  const when = (c: Command) =>
    c.status === 'failed'
      ? t('device.cmd.failedAt', { when: date(c.failed_at) })
      : c.status === 'delivered'
        ? t('device.cmd.deliveredAt', { when: date(c.delivered_at) })
        : t(c.status === 'expired' ? 'device.cmd.expiredAt' : 'device.cmd.waitsUntil', { when: date(c.expires_at) });
  // The device's own words (its errmsg) as it sent them; the cloud's one reason in the reader's language.
  const why = (c: Command) =>
    c.fail_code === null
      ? t('device.cmd.unsent')
      : t('device.cmd.deviceError', { code: c.fail_code, reason: c.fail_reason ?? '' });

  return (
    <section className="card" data-testid="command-history">
      <h2>{t('device.commands')}</h2>
      <p className="muted small">{t('device.cmd.hint')}</p>
      {error !== null && <Notice kind="error">{err(error)}</Notice>}
      {commands !== null && commands.length === 0 && <p className="muted">{t('device.cmd.none')}</p>}
      {commands !== null && commands.length > 0 && (
        <table className="table" data-testid="commands">
          <tbody>
            {commands.map((c) => (
              <tr key={c.id} data-testid={`command-${c.status}`}>
                <td>
                  <div>{NAMED.has(c.cmd) ? t(`device.cmdName.${c.cmd}` as Key) : <span className="mono">{c.cmd}</span>}</div>
                  {/* Each time whole on its line when a phone's width wraps them. */}
                  <div className="muted small">
                    <span className="nowrap">{t('device.cmd.sentAt', { when: date(c.created_at) })}</span> ·{' '}
                    <span className="nowrap">{when(c)}</span>
                  </div>
                  {c.status === 'failed' && (
                    <div className="small fail-reason" data-testid="command-fail-reason">
                      {why(c)}
                    </div>
                  )}
                </td>
                <td className="nowrap" style={{ textAlign: 'right' }}>
                  <span className={`badge ${BADGE[c.status]}`}>{t(`device.cmd.${c.status}` as Key)}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {commands !== null && commands.length >= limit && limit < ALL && (
        <button type="button" className="link-btn" onClick={() => setLimit(ALL)} data-testid="commands-more">
          {t('device.cmd.more')}
        </button>
      )}
    </section>
  );
}
