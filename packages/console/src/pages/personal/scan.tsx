import { type FormEvent, useEffect, useRef, useState } from 'react';
import { type BindResult, post } from '../../api.js';
import { decodeFile, decodeQr, decoderName } from '../../decode.js';
import { type Key, reasonText, useI18n } from '../../i18n/index.js';
import { Link, navigate, useLocation } from '../../router.js';
import { useMe } from '../../session.js';
import { ReturnToApp, rememberReturn } from '../../third-party.js';
import { Notice } from '../../ui.js';

/** Where a decoded code goes: the confirmation page resolves it with the server. */
function openCode(content: string) {
  navigate(`/bind?code=${encodeURIComponent(content)}`);
}

/**
 * Add a device (also what /hw/addDevice and /wwopen/connect/hardware/addDevice open): scan with
 * the camera, pick a photo, paste a code's text, or type the SN. Mobile-first: one column.
 */
export function ScanPage() {
  const { t } = useI18n();
  const loc = useLocation();
  // Opened by a third-party application (app + redirect_uri): it gets the person back when they are done.
  rememberReturn(loc.query);
  // /scan#sn (from the Bluetooth page's "type the SN"): the SN form, not the camera.
  useEffect(() => {
    if (window.location.hash === '#sn') document.getElementById('sn')?.scrollIntoView();
  }, []);
  return (
    <div className="narrow">
      <h1>{t('scan.title')}</h1>
      <Scanner />
      {/* Devices that advertise over Bluetooth (seed 001), e.g. ones not yet on Wi-Fi. */}
      <Link to="/bluetooth" className="button wide" data-testid="to-bluetooth">
        {t('scan.bluetooth')}
      </Link>
      <PasteCode />
      <AddBySn />
      <ReturnToApp result="cancelled" />
    </div>
  );
}

function Scanner() {
  const { t } = useI18n();
  const video = useRef<HTMLVideoElement>(null);
  const [stream, setStream] = useState<MediaStream | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [decoder, setDecoder] = useState<string>('');
  const [busy, setBusy] = useState(false);
  const canCamera = typeof navigator.mediaDevices?.getUserMedia === 'function';

  useEffect(() => {
    decoderName().then(setDecoder);
  }, []);

  // Decode frames while the camera runs; stop it when the page goes away.
  useEffect(() => {
    if (!stream) return;
    const v = video.current;
    if (v) {
      v.srcObject = stream;
      v.play().catch(() => undefined);
    }
    let stop = false;
    const tick = async () => {
      if (stop) return;
      if (v && v.readyState >= 2) {
        const text = await decodeQr(v);
        if (text && !stop) {
          stop = true;
          for (const tr of stream.getTracks()) tr.stop();
          openCode(text);
          return;
        }
      }
      setTimeout(tick, 250);
    };
    tick();
    return () => {
      stop = true;
      for (const tr of stream.getTracks()) tr.stop();
    };
  }, [stream]);

  const start = async () => {
    setProblem(null);
    try {
      setStream(await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false }));
    } catch (e) {
      setProblem(t('scan.cameraDenied', { reason: e instanceof Error ? e.message : String(e) }));
    }
  };

  const onFile = async (f: File | undefined) => {
    if (!f) return;
    setBusy(true);
    setProblem(null);
    try {
      const text = await decodeFile(f);
      if (text) openCode(text);
      else setProblem(t('scan.notFound'));
    } catch {
      setProblem(t('scan.notFound'));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card scanner">
      <div className={`viewfinder ${stream ? 'live' : ''}`}>
        {stream ? <video ref={video} muted playsInline /> : <div className="vf-frame" aria-hidden="true" />}
      </div>
      <p className="muted small">{canCamera ? t('scan.hint') : t('scan.noCamera')}</p>
      {canCamera &&
        (stream ? (
          <button type="button" className="wide" onClick={() => setStream(null)}>
            {t('scan.stop')}
          </button>
        ) : (
          <button type="button" className="primary wide" onClick={start}>
            {t('scan.camera')}
          </button>
        ))}
      <label className="file-btn wide">
        {t('scan.photo')}
        <input
          type="file"
          accept="image/*"
          capture="environment"
          data-testid="photo"
          disabled={busy}
          onChange={(e) => onFile(e.target.files?.[0])}
        />
      </label>
      {problem && <Notice kind="error">{problem}</Notice>}
      {decoder && <p className="muted tiny">QR: {decoder}</p>}
    </section>
  );
}

function PasteCode() {
  const { t } = useI18n();
  const [text, setText] = useState('');
  return (
    <details className="card">
      <summary>{t('scan.paste')}</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) openCode(text.trim());
        }}
      >
        <label>
          {t('scan.pasteLabel')}
          <textarea rows={3} value={text} onChange={(e) => setText(e.target.value)} />
        </label>
        <button type="submit" className="wide">
          {t('scan.open')}
        </button>
      </form>
    </details>
  );
}

function AddBySn() {
  const { t, err, lang } = useI18n();
  const me = useMe();
  const owners = [
    { value: `user:${me.personal_space.id}`, label: t('bind.personal'), blocked: null as Key | null },
    ...me.organisations.map((o) => ({
      value: `org:${o.id}`,
      label: o.name,
      // Seed 004: without member binding a member cannot bind here; say so before they try.
      blocked: o.role === 'member' && !o.member_binding ? ('bind.memberBindingOff' as Key) : null,
    })),
  ];
  const firstFree = owners.find((o) => !o.blocked)?.value ?? owners[0]!.value;
  const [sn, setSn] = useState('');
  const [pk, setPk] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [owner, setOwner] = useState(firstFree);
  const [remark, setRemark] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const blocked = owners.find((o) => o.value === owner)?.blocked ?? null;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const [type, id] = owner.split(/:(.*)/s) as ['org' | 'user', string];
    try {
      const r = await post<BindResult>('/api/v1/bind', {
        owner: { type, id },
        sn: sn.trim(),
        ...(pk.trim() ? { product_key: pk.trim() } : {}),
        ...(code.trim() ? { verif_code: code.trim() } : {}),
        ...(remark.trim() ? { remark_name: remark.trim() } : {}),
      });
      navigate(`/devices/${encodeURIComponent(r.sn)}?bound=${r.result}`);
    } catch (x) {
      const c = (x as { code?: string }).code;
      if (c === 'VERIF_CODE_REQUIRED' || c === 'VERIF_CODE_WRONG') setNeedCode(true);
      // Being asked for the code is the normal next step, not a failure: the prompt says where it is.
      setError(c === 'VERIF_CODE_REQUIRED' ? null : err(x));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" id="sn">
      <h2>{t('scan.bySn')}</h2>
      <form onSubmit={submit} data-testid="sn-form">
        <label>
          {t('scan.sn')}
          <input
            name="sn"
            value={sn}
            onChange={(e) => setSn(e.target.value)}
            placeholder={t('scan.snHint')}
            autoCapitalize="characters"
            autoComplete="off"
            spellCheck={false}
            required
          />
        </label>
        <label>
          {t('scan.productKey')}
          <input name="product_key" value={pk} onChange={(e) => setPk(e.target.value)} autoComplete="off" spellCheck={false} />
        </label>
        {needCode && (
          <Notice kind="info" testId="verif-needed">
            {t('scan.verifNeeded')}
          </Notice>
        )}
        {needCode && (
          <label>
            {t('scan.verifCode')}
            <input
              name="verif_code"
              value={code}
              onChange={(e) => setCode(e.target.value)}
              inputMode="numeric"
              pattern="[0-9]{6}"
              maxLength={6}
              autoComplete="one-time-code"
              required
            />
            <span className="hint">{t('scan.verifHint')}</span>
          </label>
        )}
        <label>
          {t('bind.owner')}
          <select name="owner" value={owner} onChange={(e) => setOwner(e.target.value)}>
            {owners.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        {blocked && (
          <Notice kind="error" testId="owner-blocked">
            {reasonText(lang, 'MEMBER_BINDING_OFF', t(blocked))}
          </Notice>
        )}
        <label>
          {t('bind.remark')}
          <input
            name="remark_name"
            value={remark}
            onChange={(e) => setRemark(e.target.value)}
            placeholder={t('bind.remarkHint')}
          />
        </label>
        {error && (
          <Notice kind="error" testId="bind-error">
            {error}
          </Notice>
        )}
        <button type="submit" className="primary wide" disabled={busy || !!blocked}>
          {busy ? t('bind.binding') : t('bind.confirm')}
        </button>
      </form>
    </section>
  );
}
