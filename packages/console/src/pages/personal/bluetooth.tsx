import { bytesToBase64, parseIdentityProof } from '@bindery/protocol/bluetooth';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, post, type ScanResolution } from '../../api.js';
import { useI18n } from '../../i18n/index.js';
import { Link, navigate } from '../../router.js';
import { Notice, OnlineBadge } from '../../ui.js';
import { BindConfirm } from './bind.js';
import { type BtDevice, GattLink, pickDevice, type SeenAdvert, scanAdverts, webBluetooth } from './bluetooth/gatt.js';
import { useDeviceProblem, WifiProvisioning } from './bluetooth/provision.js';

/** POST /api/v1/bluetooth/identity: the device behind a verified proof, and a ticket to bind it with. */
interface BtIdentity {
  sn: string;
  model: { model_id: string; name: string; product_key: string };
  bound: boolean;
  online: boolean;
  owner?: { type: string; id?: string; name?: string };
  bind_options: ScanResolution;
  ticket: string;
  ticket_expires_at: string;
}

/** Server refusals of a proof, worded on this page with what to do next (the errors namespace has the short form). */
const PROOF_CODES = ['BT_PROOF_REPLAYED', 'BT_PROOF_INVALID', 'BT_TICKET_INVALID'] as const;

/**
 * /bluetooth (and /hw/f?t=bt, seed 001's constant QR): find Bindery devices nearby over Web Bluetooth,
 * read each one's identity proof and let the server say which device it is; a device that is not online
 * gets its Wi-Fi here and, once online over WSS, goes into the normal bind confirmation with the ticket.
 * iOS Safari and desktop Firefox have no Web Bluetooth: they get the other ways to add a device.
 */
export function BluetoothPage() {
  const { t } = useTranslation('bluetooth');
  const bt = webBluetooth();
  const [found, setFound] = useState<BtDevice[]>([]);
  const [adverts, setAdverts] = useState<Map<string, SeenAdvert>>(new Map());
  const [scanning, setScanning] = useState<(() => void) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const add = (d: BtDevice) => setFound((list) => (list.some((x) => x.id === d.id) ? list : [...list, d]));

  useEffect(() => () => scanning?.(), [scanning]);

  if (!bt) return <NoBluetooth />;

  const find = async () => {
    setError(null);
    try {
      add(await pickDevice(bt));
    } catch (e) {
      // The picker closed without a choice: nothing to say.
      if (!(e instanceof DOMException && e.name === 'NotFoundError' && /cancel/i.test(e.message))) {
        setError(t('find.failed', { reason: e instanceof Error ? e.message : String(e) }));
      }
    }
  };
  const scan = async () => {
    setError(null);
    try {
      const stop = await scanAdverts(bt, (a) => setAdverts((m) => new Map(m).set(a.device.id, a)));
      setScanning(() => stop);
    } catch (e) {
      setError(t('find.failed', { reason: e instanceof Error ? e.message : String(e) }));
    }
  };
  const listed = [...adverts.values()].filter((a) => !found.some((d) => d.id === a.device.id));

  return (
    <div className="narrow" data-testid="bt-page">
      <h1>{t('title')}</h1>
      <section className="card stack">
        <p>{t('intro')}</p>
        <button type="button" className="primary wide" onClick={find} data-testid="bt-find">
          {t('find.button')}
        </button>
        {typeof bt.requestLEScan === 'function' && !scanning && (
          <button type="button" className="wide" onClick={scan} data-testid="bt-scan">
            {t('find.scan')}
          </button>
        )}
        {error && <Notice kind="error">{error}</Notice>}
      </section>
      {listed.length > 0 && (
        <section className="card">
          <h2>{t('nearby.title')}</h2>
          <ul className="device-list" data-testid="bt-adverts">
            {listed.map((a) => (
              <li key={a.device.id} className="device-row">
                <span className="dr-main">
                  <strong className="mono">{a.device.name || a.advert.deviceId}</strong>
                  <span className="muted small">
                    {t(`bind.${a.advert.status.bindState}`)}
                    {a.advert.status.lowBattery && ` · ${t('nearby.lowBattery')}`}
                    {a.rssi !== null && ` · ${a.rssi} dBm`}
                  </span>
                </span>
                <button type="button" onClick={() => add(a.device)}>
                  {t('nearby.connect')}
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      {found.map((d) => (
        <FoundDevice key={d.id} device={d} />
      ))}
      <p className="muted small">
        <Link to="/scan">{t('other.link')}</Link>
      </p>
    </div>
  );
}

function NoBluetooth() {
  const { t } = useTranslation('bluetooth');
  return (
    <div className="narrow">
      <h1>{t('title')}</h1>
      <section className="card stack" data-testid="bt-unsupported">
        <Notice kind="info">{t('unsupported.text')}</Notice>
        <p>{t('unsupported.browsers')}</p>
        <Link to="/scan" className="button primary wide">
          {t('unsupported.scan')}
        </Link>
        <Link to="/scan#sn" className="button wide">
          {t('unsupported.sn')}
        </Link>
      </section>
    </div>
  );
}

type Phase = 'connecting' | 'reading' | 'checking' | 'ready' | 'failed';

/** One device the person picked: connect, read the proof, ask the server; then Wi-Fi if offline, then bind. */
function FoundDevice({ device }: { device: BtDevice }) {
  const { t } = useTranslation('bluetooth');
  const { err } = useI18n();
  const problem = useDeviceProblem();
  const [phase, setPhase] = useState<Phase>('connecting');
  const [identity, setIdentity] = useState<BtIdentity | null>(null);
  const [online, setOnline] = useState(false);
  const [error, setError] = useState<{ text: string; code?: string } | null>(null);
  // The SN the proof names, before (or without) the server's word on it: shown as a claim only.
  const [claimed, setClaimed] = useState<string | null>(null);
  const link = useRef<GattLink | null>(null);

  /** Reads the proof again (the device counts its nonce up) and trades it for a fresh answer and ticket. */
  const identify = useCallback(async (l: GattLink): Promise<BtIdentity> => {
    setPhase('reading');
    const proof = await l.readIdentity();
    try {
      setClaimed(parseIdentityProof(proof).sn);
    } catch {
      // malformed: the server says so (VALIDATION_FAILED)
    }
    setPhase('checking');
    const r = await post<BtIdentity>('/api/v1/bluetooth/identity', { proof: bytesToBase64(proof) });
    setIdentity(r);
    setOnline((was) => was || r.online);
    setPhase('ready');
    return r;
  }, []);

  const fail = useCallback(
    (e: unknown) => {
      setPhase('failed');
      if (e instanceof ApiError) {
        const known = (PROOF_CODES as readonly string[]).includes(e.code);
        setError({ text: known ? t(`proof.${e.code}`) : err(e), code: e.code });
      } else setError({ text: problem(e) });
    },
    [t, err, problem],
  );

  // The latest wording without making the connection depend on it: the words (t) change identity when a
  // namespace loads, and a connection effect that re-ran then would drop the GATT link it is opening.
  const failRef = useRef(fail);
  failRef.current = fail;

  const start = useCallback(
    async (live: () => boolean) => {
      setError(null);
      setPhase('connecting');
      try {
        const l = link.current?.connected ? link.current : await GattLink.connect(device);
        if (!live()) return l.disconnect();
        link.current = l;
        await identify(l);
      } catch (e) {
        if (live()) failRef.current(e);
      }
    },
    [device, identify],
  );

  useEffect(() => {
    let live = true;
    start(() => live);
    return () => {
      live = false;
      link.current?.disconnect();
      link.current = null;
    };
  }, [start]);

  const renewTicket = useCallback(async () => {
    if (!link.current) throw new Error('not connected');
    return (await identify(link.current)).ticket;
  }, [identify]);
  const cameOnline = useCallback(() => setOnline(true), []);

  return (
    <section className="card stack" data-testid="bt-device" data-device={device.id} data-phase={phase}>
      <h2>{identity?.model.name ?? device.name ?? t('device.unnamed')}</h2>
      {identity ? (
        <dl className="facts">
          <dt>{t('device.sn')}</dt>
          <dd className="mono" data-testid="bt-sn">
            {identity.sn}
          </dd>
          <dt>{t('device.state')}</dt>
          <dd data-testid="bt-state">
            <OnlineBadge online={online} /> {identity.bound ? t('bind.bound') : t('bind.unbound')}
            {identity.owner?.name && ` · ${identity.owner.name}`}
          </dd>
        </dl>
      ) : (
        <>
          {claimed && (
            <p className="muted" data-testid="bt-claimed">
              {t('device.claimed', { sn: claimed })}
            </p>
          )}
          {phase !== 'failed' && <p className="muted">{t(`phase.${phase}`)}</p>}
        </>
      )}
      {error && (
        <Notice kind="error" testId="bt-error">
          <span data-code={error.code}>{error.text}</span>
        </Notice>
      )}
      {phase === 'failed' && (
        <button type="button" className="wide" onClick={() => start(() => true)}>
          {t('device.again')}
        </button>
      )}
      {identity && phase !== 'failed' && !online && (
        <WifiProvisioning link={link.current!} ticket={identity.ticket} renewTicket={renewTicket} onOnline={cameOnline} />
      )}
      {identity && phase !== 'failed' && online && <BindStep identity={identity} onRenew={() => start(() => true)} />}
    </section>
  );
}

/** The normal bind confirmation, the ticket as the proof of possession; then the device's page. */
function BindStep({ identity, onRenew }: { identity: BtIdentity; onRenew(): void }) {
  const { t } = useTranslation('bluetooth');
  const { validity } = useI18n();
  const res = identity.bind_options;
  if (res.validity !== 'ok' || res.action !== 'bind') {
    return (
      <>
        <Notice kind="error" testId="bt-bind-problem">
          {validity(res.validity, res.message)}
        </Notice>
        {res.device_page && (
          <Link to={res.device_page} className="button wide">
            {t('bind.openDevice')}
          </Link>
        )}
      </>
    );
  }
  return (
    <div className="bt-bind" data-testid="bt-bind">
      <Notice kind="ok">{t('bind.ready')}</Notice>
      <BindConfirm
        key={identity.ticket}
        res={res}
        proof={{ bluetooth_ticket: identity.ticket }}
        onBound={(r) => navigate(`/devices/${encodeURIComponent(r.sn)}?bound=${r.result}`)}
      />
      <button type="button" className="link-btn" onClick={onRenew}>
        {t('bind.renew')}
      </button>
    </div>
  );
}
