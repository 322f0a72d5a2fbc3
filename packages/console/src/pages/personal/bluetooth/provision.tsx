import { BtErr, BtFormatError, type BtMessage } from '@bindery/protocol/bluetooth';
import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, get } from '../../../api.js';
import { useI18n } from '../../../i18n/index.js';
import { Notice } from '../../../ui.js';
import { DeviceRefused, type GattLink } from './gatt.js';

type Security = 'open' | 'wpa2' | 'wpa3';
type Network = { ssid: string; rssi: number; security: Security };
type Status = Extract<BtMessage, { type: 'status' }>;
const OTHER = '\u0000other';
/** While provisioning the page asks the server every 2 s whether the device has come online (contract). */
const POLL_MS = 2000;

/** Words for a failure talking to the device (its BT error code, a timeout, a dropped link). */
export function useDeviceProblem(): (e: unknown) => string {
  const { t } = useTranslation('bluetooth');
  return useCallback(
    (e: unknown) => {
      if (e instanceof DeviceRefused) return codeText(t, e.code);
      if (e instanceof BtFormatError) return t('device.format', { reason: e.message });
      if (e instanceof Error && e.message === 'timeout') return t('device.timeout');
      return t('device.lost', { reason: e instanceof Error ? e.message : String(e) });
    },
    [t],
  );
}

/**
 * Wi-Fi provisioning for a device that is not online: the networks it sees (get_wifi_list) or a typed
 * SSID, password and security → set_wifi; its status indications shown as they come; the server asked
 * until the device is online over WSS (then `onOnline`). A ticket that expired on the way is renewed by
 * reading the identity again (`renewTicket`).
 */
export function WifiProvisioning(props: {
  link: GattLink;
  ticket: string;
  renewTicket(): Promise<string>;
  onOnline(firmware?: string): void;
}) {
  const { link, ticket, renewTicket, onOnline } = props;
  const { t } = useTranslation('bluetooth');
  const { err } = useI18n();
  const problem = useDeviceProblem();
  // Read through a ref: the handshake below runs once per link, not again when the words change.
  const problemRef = useRef(problem);
  problemRef.current = problem;
  const [networks, setNetworks] = useState<Network[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [ssid, setSsid] = useState('');
  const [typed, setTyped] = useState('');
  const [password, setPassword] = useState('');
  const [security, setSecurity] = useState<Security>('wpa2');
  const [status, setStatus] = useState<Status | null>(null);
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  // hello, then the networks the device can see. A device that cannot list still takes a typed SSID.
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        await link.request({ type: 'hello', mtu: 23 }, ['hello_ack']);
        const list = await link.request({ type: 'get_wifi_list' }, ['wifi_list']);
        if (!live) return;
        const best = new Map<string, Network>();
        for (const n of list.networks) if (n.ssid && (best.get(n.ssid)?.rssi ?? -999) < n.rssi) best.set(n.ssid, n);
        const sorted = [...best.values()].sort((a, b) => b.rssi - a.rssi);
        setNetworks(sorted);
        setSsid(sorted[0]?.ssid ?? OTHER);
        if (sorted[0]) setSecurity(sorted[0].security);
      } catch (e) {
        if (!live) return;
        setNetworks([]);
        setSsid(OTHER);
        setListError(problemRef.current(e));
      }
    })();
    return () => {
      live = false;
    };
  }, [link]);

  // Status indications, whenever the device sends them (connecting → connected / failed).
  useEffect(() => link.onMessage((m) => m.type === 'status' && setStatus(m)), [link]);

  // Once the Wi-Fi is sent: ask the server until the device is online on its WSS connection.
  useEffect(() => {
    if (!sent) return;
    let live = true;
    let current = ticket;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const s = await get<{ online: boolean; firmware_version?: string }>(
          `/api/v1/bluetooth/tickets/${encodeURIComponent(current)}/status`,
        );
        if (!live) return;
        if (s.online) return onOnline(s.firmware_version);
      } catch (e) {
        if (!live) return;
        if (e instanceof ApiError && e.code === 'BT_TICKET_INVALID') {
          // Five minutes passed: a fresh read of the identity gives a fresh ticket.
          current = await renewTicket().catch(() => current);
        } else setError(err(e));
      }
      if (live) timer = setTimeout(poll, POLL_MS);
    };
    poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [sent, ticket, renewTicket, onOnline, err]);

  const chosen = networks?.find((n) => n.ssid === ssid);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const name = ssid === OTHER ? typed.trim() : ssid;
    if (!name) return;
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const st = await link.request(
        { type: 'set_wifi', ssid: name, password: security === 'open' ? '' : password, security },
        ['status'],
        30_000,
      );
      setStatus(st);
      setSent(true);
    } catch (x) {
      setError(problem(x));
    } finally {
      setBusy(false);
    }
  };

  if (!networks) return <p className="muted">{t('wifi.asking')}</p>;
  const failed = status?.wifi === 'failed';
  return (
    <form className="stack" onSubmit={submit} data-testid="bt-wifi-form">
      <h2>{t('wifi.title')}</h2>
      <p className="hint">{t('wifi.intro')}</p>
      {listError && <Notice kind="info">{t('wifi.noList', { reason: listError })}</Notice>}
      <label>
        {t('wifi.network')}
        <select
          name="ssid"
          value={ssid}
          onChange={(e) => {
            setSsid(e.target.value);
            const n = networks.find((x) => x.ssid === e.target.value);
            if (n) setSecurity(n.security);
          }}
        >
          {networks.map((n) => (
            <option key={n.ssid} value={n.ssid}>
              {t('wifi.option', { ssid: n.ssid, bars: bars(n.rssi), security: t(`security.${n.security}`) })}
            </option>
          ))}
          <option value={OTHER}>{t('wifi.other')}</option>
        </select>
      </label>
      {ssid === OTHER && (
        <label>
          {t('wifi.ssid')}
          <input name="ssid_typed" value={typed} maxLength={32} onChange={(e) => setTyped(e.target.value)} required />
        </label>
      )}
      <label>
        {t('wifi.security')}
        <select name="security" value={security} disabled={!!chosen} onChange={(e) => setSecurity(e.target.value as Security)}>
          {(['wpa2', 'wpa3', 'open'] as const).map((s) => (
            <option key={s} value={s}>
              {t(`security.${s}`)}
            </option>
          ))}
        </select>
      </label>
      {security !== 'open' && (
        <label>
          {t('wifi.password')}
          <input
            name="wifi_password"
            type="password"
            autoComplete="off"
            value={password}
            minLength={8}
            maxLength={63}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </label>
      )}
      {status && (
        <Notice kind={failed ? 'error' : status.wifi === 'connected' ? 'ok' : 'info'} testId="bt-wifi-status">
          {failed && status.error ? codeText(t, status.error) : t(`wifi.state.${status.wifi}`)}
          {status.wifi === 'connected' && ` · ${t(`cloud.${status.cloud}`)}`}
        </Notice>
      )}
      {sent && !failed && (
        <p className="muted" data-testid="bt-waiting-online">
          {t('wifi.waitingOnline')}
        </p>
      )}
      {error && <Notice kind="error">{error}</Notice>}
      <button type="submit" className={sent && !failed ? 'wide' : 'primary wide'} disabled={busy}>
        {busy ? t('wifi.sending') : sent ? t('wifi.resend') : t('wifi.send')}
      </button>
    </form>
  );
}

/** BT-10's codes that a person can act on, in words; the others by number. */
const WORDED: number[] = [
  BtErr.badValue,
  BtErr.state,
  BtErr.busy,
  BtErr.wifiAuth,
  BtErr.wifiNotFound,
  BtErr.wifiTimeout,
  BtErr.cloudUnreachable,
];
function codeText(t: (k: string, v?: Record<string, unknown>) => string, code: number): string {
  return WORDED.includes(code) ? t(`code.${code}`) : t('device.error', { code });
}

/** Signal strength as 1–4 bars, for the network picker. */
function bars(rssi: number): string {
  const n = rssi >= -55 ? 4 : rssi >= -67 ? 3 : rssi >= -78 ? 2 : 1;
  return '▂▄▆█'.slice(0, n);
}
