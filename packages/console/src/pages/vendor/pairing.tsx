import { useQuery } from '@tanstack/react-query';
import { type CSSProperties, type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import { errorText, useI18n } from '../../i18n/index.js';
import {
  beep,
  classify,
  forget,
  type KeyKind,
  keyNorm,
  loadShift,
  newShift,
  type PairEntry,
  type Refusal,
  randomKey,
  ratePerHour,
  recordAnswer,
  remember,
  type Shift,
  type StationSetup,
  saveShift,
} from './pairing-station.js';

/**
 * The pairing station (issue 13 item 6; docs/pairing.md): a full-screen page for a production-line PC
 * with a USB barcode scanner, which types each code and presses Enter. IMEI and label in either order
 * make a pair; every pair is queued in localStorage first and uploaded in order with its own
 * idempotency key, so a network drop loses nothing and a retry pairs nothing twice.
 */

type Flash =
  | { kind: 'checking'; entry: PairEntry }
  | { kind: 'paired'; entry: PairEntry }
  | { kind: 'queued'; entry: PairEntry }
  | { kind: 'refused'; reason: Refusal; entry?: PairEntry; value?: string };

const SEND_TIMEOUT = 4000;
const STATION_KEY = 'bindery.pairing.station';

interface PairAnswer {
  outcome: 'paired' | 'refused';
  reason: Refusal | null;
  message: string;
  sn: string | null;
  conflict: string | null;
}

/** Network trouble (retry later) as opposed to an answer. */
const transient = (e: unknown) => e instanceof ApiError && (e.status === 0 || e.status >= 500 || e.status === 408);

export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const { lang, setLang } = useI18n();
  const [shift, setShiftState] = useState<Shift | null>(() => loadShift(vendorId));
  const ref = useRef(shift);
  const update = useCallback(
    (fn: (s: Shift) => Shift) => {
      if (!ref.current) return;
      ref.current = fn(ref.current);
      saveShift(vendorId, ref.current);
      setShiftState(ref.current);
    },
    [vendorId],
  );
  const start = (setup: StationSetup) => {
    ref.current = newShift(setup, Date.now());
    saveShift(vendorId, ref.current);
    setShiftState(ref.current);
  };
  const end = () => {
    ref.current = null;
    saveShift(vendorId, null);
    setShiftState(null);
  };

  return (
    <div style={frame} data-testid="pairing-station">
      <div style={{ display: 'flex', gap: 12, alignItems: 'center', marginBottom: 12 }}>
        <strong style={{ fontSize: 20 }}>{t('pairing.title')}</strong>
        <span style={{ flex: 1 }} />
        <button type="button" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="pairing-lang">
          {lang === 'zh' ? 'English' : '中文'}
        </button>
        <Link to={`/vendors/${vendorId}/batches`}>{t('pairing.leave')}</Link>
      </div>
      {shift ? (
        <Station vendorId={vendorId} shift={shift} current={() => ref.current ?? shift} update={update} onEnd={end} />
      ) : (
        <Setup vendorId={vendorId} onStart={start} />
      )}
    </div>
  );
}

function Setup({ vendorId, onStart }: { vendorId: string; onStart: (s: StationSetup) => void }) {
  const { t } = useTranslation('vendor');
  const batches = useQuery({
    queryKey: ['vendors', vendorId, 'batches', 'ready-for-pairing'],
    queryFn: () =>
      unwrap(api.GET('/api/v1/vendors/{vendorId}/batches', { params: { path: { vendorId }, query: { limit: 100 } } })),
  });
  const models = useQuery({
    // The same key and shape as the models page: one cache entry.
    queryKey: ['vendors', vendorId, 'models'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/vendors/{vendorId}/models', { params: { path: { vendorId } } }))).models,
  });
  const [target, setTarget] = useState('');
  const [station, setStation] = useState(() => localStorage.getItem(STATION_KEY) ?? `line-${randomKey(4)}`);
  const [keyKind, setKeyKind] = useState<KeyKind>('imei');
  type BatchLite = {
    id: string;
    model_id: string;
    state: string;
    count: number;
    first_sn: string | null;
    last_sn: string | null;
  };
  const batchList = ((batches.data as { batches?: BatchLite[] } | undefined)?.batches ?? []).filter((b) => b.state === 'ready');
  const modelList = models.data ?? [];
  const pkOf = (modelId: string) => modelList.find((m) => m.model_id === modelId)?.product_key ?? '';
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const [kind, id] = target.split(':') as ['batch' | 'model', string];
    if (!id || !/^[A-Za-z0-9_.:-]{1,40}$/.test(station)) return;
    localStorage.setItem(STATION_KEY, station);
    const b = kind === 'batch' ? batchList.find((x) => x.id === id) : undefined;
    const modelId = b ? b.model_id : id;
    const m = modelList.find((x) => x.model_id === modelId);
    onStart({
      station,
      keyKind,
      batchId: b ? b.id : null,
      modelId: b ? null : id,
      productKey: pkOf(modelId),
      title: b ? `${m?.name ?? ''} · ${b.first_sn ?? ''}…${b.last_sn ?? ''} (${b.count})` : (m?.name ?? id),
    });
  };
  const loadError = batches.error ?? models.error;
  return (
    <form className="card" onSubmit={submit} style={{ maxWidth: 560 }} data-testid="pairing-setup">
      <h2>{t('pairing.setup.title')}</h2>
      <p className="muted">{t('pairing.setup.hint')}</p>
      {loadError && <p role="alert">{errorText(loadError)}</p>}
      <label>
        {t('pairing.setup.target')}
        <select value={target} onChange={(e) => setTarget(e.target.value)} required data-testid="pairing-target">
          <option value="">{t('pairing.setup.choose')}</option>
          <optgroup label={t('pairing.setup.batches')}>
            {batchList.map((b) => (
              <option key={b.id} value={`batch:${b.id}`}>
                {`${modelList.find((m) => m.model_id === b.model_id)?.name ?? b.model_id} · ${b.first_sn ?? ''}…${b.last_sn ?? ''} (${b.count})`}
              </option>
            ))}
          </optgroup>
          <optgroup label={t('pairing.setup.models')}>
            {modelList.map((m) => (
              <option key={m.model_id} value={`model:${m.model_id}`}>
                {`${m.name} (${m.product_key})`}
              </option>
            ))}
          </optgroup>
        </select>
      </label>
      <label>
        {t('pairing.setup.station')}
        <input
          value={station}
          onChange={(e) => setStation(e.target.value.trim())}
          pattern="[A-Za-z0-9_.:\-]{1,40}"
          required
          data-testid="pairing-station-name"
        />
      </label>
      <label>
        {t('pairing.setup.keyKind')}
        <select value={keyKind} onChange={(e) => setKeyKind(e.target.value as KeyKind)} data-testid="pairing-key-kind">
          <option value="imei">{t('pairing.setup.imei')}</option>
          <option value="mac">{t('pairing.setup.mac')}</option>
        </select>
      </label>
      <button type="submit" className="primary" disabled={!target} style={{ marginTop: 12 }} data-testid="pairing-start">
        {t('pairing.setup.start')}
      </button>
    </form>
  );
}

function Station({
  vendorId,
  shift,
  current,
  update,
  onEnd,
}: {
  vendorId: string;
  shift: Shift;
  /** The shift as last updated (state lags a render behind; the upload loop must not). */
  current: () => Shift;
  update: (fn: (s: Shift) => Shift) => void;
  onEnd: () => void;
}) {
  const { t } = useTranslation('vendor');
  const { lang } = useI18n();
  const [pending, setPending] = useState<{ key?: string; label?: string }>({});
  const [flash, setFlash] = useState<Flash | null>(null);
  const [online, setOnline] = useState(true);
  const [authLost, setAuthLost] = useState(false);
  const [now, setNow] = useState(Date.now());
  const input = useRef<HTMLInputElement>(null);
  const pendingRef = useRef<{ key?: string; label?: string }>({});
  const sending = useRef(false);
  const retry = useRef<ReturnType<typeof setTimeout> | null>(null);
  const backoff = useRef(1000);
  const keyName = shift.keyKind === 'imei' ? 'IMEI' : 'MAC';

  const batch = useQuery({
    queryKey: ['batches', shift.batchId],
    queryFn: () => unwrap(api.GET('/api/v1/batches/{batchId}', { params: { path: { batchId: shift.batchId! } } })),
    enabled: shift.batchId !== null && online,
    refetchInterval: 10_000,
  });

  // The batch's progress (all stations): after a pair, at most every 3 s, besides the 10 s poll. A pair
  // inside the 3 s gets one trailing refresh, so the count catches up with the last pair of a burst.
  const lastRefresh = useRef(0);
  const trailing = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refetchBatch = batch.refetch;
  const refreshBatch = useCallback(() => {
    if (shift.batchId === null) return;
    const wait = lastRefresh.current + 3000 - Date.now();
    if (wait > 0) {
      trailing.current ??= setTimeout(() => {
        trailing.current = null;
        lastRefresh.current = Date.now();
        void refetchBatch();
      }, wait);
      return;
    }
    lastRefresh.current = Date.now();
    void refetchBatch();
  }, [shift.batchId, refetchBatch]);
  useEffect(
    () => () => {
      if (trailing.current) clearTimeout(trailing.current);
    },
    [],
  );

  const send = useCallback(
    async (e: PairEntry): Promise<PairAnswer> => {
      const s = current();
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), SEND_TIMEOUT);
      try {
        return (await unwrap(
          api.POST('/api/v1/vendors/{vendorId}/pairing/pairs', {
            params: { path: { vendorId } },
            body: {
              idempotency_key: e.key,
              shift_id: s.shiftId,
              station: s.station,
              device_key: e.deviceKey,
              label: e.label,
              scanned_at: e.scannedAt,
              ...(s.batchId ? { batch_id: s.batchId } : { model_id: s.modelId ?? '' }),
            },
            signal: ctl.signal,
          }),
        )) as PairAnswer;
      } finally {
        clearTimeout(timer);
      }
    },
    [vendorId, current],
  );

  /** Uploads the queue in order, one pair at a time; stops at the first network failure and retries later. */
  const pump = useCallback(async () => {
    if (sending.current) return;
    sending.current = true;
    if (retry.current) clearTimeout(retry.current);
    retry.current = null;
    try {
      for (;;) {
        const e = current().queue[0];
        if (!e) break;
        let answered: PairEntry;
        try {
          const a = await send(e);
          answered = {
            ...e,
            state: a.outcome,
            reason: a.reason ?? undefined,
            sn: a.sn,
            conflict: a.conflict,
            message: a.message,
          };
          setOnline(true);
          backoff.current = 1000;
        } catch (err) {
          if (transient(err)) {
            setOnline(false);
            // Everything waiting is now answered late; the screen said "saved" for it.
            update((s) => ({ ...s, queue: s.queue.map((q) => ({ ...q, late: true })) }));
            setFlash((f) => (f?.kind === 'checking' ? { kind: 'queued', entry: f.entry } : f));
            if (!e.late) beep('queued');
            retry.current = setTimeout(() => void pump(), backoff.current);
            backoff.current = Math.min(backoff.current * 2, 5000);
            break;
          }
          if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
            setAuthLost(true);
            break;
          }
          answered = { ...e, state: 'refused', reason: 'rejected', message: errorText(err) };
        }
        update((s) => {
          const next = recordAnswer(s, answered, Date.now());
          return answered.state === 'refused' ? forget(next, e.deviceKey, e.label) : next;
        });
        if (answered.late) {
          if (answered.state === 'refused') beep('refused');
        } else {
          setFlash(
            answered.state === 'paired'
              ? { kind: 'paired', entry: answered }
              : { kind: 'refused', reason: answered.reason!, entry: answered },
          );
          beep(answered.state === 'paired' ? 'ok' : 'refused');
        }
        if (answered.state === 'paired') refreshBatch();
      }
    } finally {
      sending.current = false;
    }
  }, [send, update, current, refreshBatch]);

  // Upload what a previous session left queued; retry when the browser says the network is back.
  useEffect(() => {
    void pump();
    const back = () => void pump();
    window.addEventListener('online', back);
    const tick = setInterval(() => setNow(Date.now()), 5000);
    return () => {
      window.removeEventListener('online', back);
      clearInterval(tick);
      if (retry.current) clearTimeout(retry.current);
    };
  }, [pump]);

  /** A mistake caught here (no request): counted and listed like the server's refusals. */
  const refuse = (reason: Refusal, value: string, asKey: boolean) => {
    setFlash({ kind: 'refused', reason, value });
    beep('refused');
    const entry: PairEntry = {
      key: randomKey(24),
      deviceKey: asKey ? value : '',
      label: asKey ? '' : value,
      scannedAt: Date.now(),
      state: 'refused',
      reason,
      message: value,
    };
    update((s) => ({ ...s, refused: s.refused + 1, recent: [entry, ...s.recent].slice(0, 12) }));
  };

  const onScan = (raw: string) => {
    const scan = classify(raw, shift.keyKind);
    if (!scan.value) return;
    const s = current();
    const pending = pendingRef.current;
    let next = { ...pending };
    if (scan.kind === 'key') {
      if (!scan.valid) return refuse('bad_check_digit', scan.value, true);
      if (pending.key !== undefined && keyNorm(pending.key) === keyNorm(scan.value))
        return refuse('duplicate_scan', scan.value, true);
      if (s.seenKeys.includes(keyNorm(scan.value))) return refuse('duplicate_scan', scan.value, true);
      next.key = scan.value;
    } else {
      const l = scan.value.toLowerCase();
      if (pending.label !== undefined && pending.label.toLowerCase() === l) return refuse('duplicate_scan', scan.value, false);
      if (s.seenLabels.includes(l)) return refuse('duplicate_scan', scan.value, false);
      next.label = scan.value;
    }
    if (next.key === undefined || next.label === undefined) {
      pendingRef.current = next;
      setPending(next);
      setFlash(null);
      return;
    }
    const entry: PairEntry = {
      key: randomKey(24),
      deviceKey: next.key,
      label: next.label,
      scannedAt: Date.now(),
      state: 'queued',
      late: !online,
    };
    next = {};
    pendingRef.current = next;
    setPending(next);
    update((x) => ({ ...remember(x, entry.deviceKey, entry.label), queue: [...x.queue, entry] }));
    if (online) setFlash({ kind: 'checking', entry });
    else {
      setFlash({ kind: 'queued', entry });
      beep('queued');
    }
    void pump();
  };

  /** Drops a half-scanned pair (the wrong module picked up): Escape in the scan field does the same. */
  const clearPending = () => {
    pendingRef.current = {};
    setPending({});
    input.current?.focus();
  };

  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const el = input.current;
    if (!el) return;
    const v = el.value;
    el.value = '';
    onScan(v);
  };

  // The scanner types into whatever has focus: keep it on the scan field.
  useEffect(() => {
    const keep = () => {
      if (document.activeElement?.tagName !== 'BUTTON') input.current?.focus();
    };
    keep();
    const i = setInterval(keep, 1000);
    return () => clearInterval(i);
  }, []);

  const rate = ratePerHour(shift, now);
  const csvHref = `/api/v1/vendors/${vendorId}/pairing/shifts/${encodeURIComponent(shift.shiftId)}/relations.csv?lang=${lang}`;
  const b = batch.data as { batch?: { count: number; counts: { paired: number } } } | undefined;
  const expect =
    pending.key === undefined
      ? pending.label === undefined
        ? 'pairing.prompt.first'
        : 'pairing.prompt.key'
      : 'pairing.prompt.label';

  return (
    <div>
      <div style={bar}>
        <span data-testid="pairing-target-title">
          <strong>{shift.title}</strong>
        </span>
        <span className="muted">
          {t('pairing.station')}: <span className="mono">{shift.station}</span> · {t('pairing.shift')}:{' '}
          <span className="mono" data-testid="pairing-shift-id">
            {shift.shiftId}
          </span>
        </span>
        <span style={{ flex: 1 }} />
        <span
          style={{ ...pill, background: online ? '#e8f7ee' : '#fff4e5', color: online ? '#1a7f37' : '#b45309' }}
          data-testid="pairing-online"
        >
          {online ? t('pairing.online') : t('pairing.offline')}
        </span>
      </div>

      <div style={stats}>
        <Stat label={t('pairing.stat.paired')} value={shift.paired} testId="pairing-count" />
        <Stat label={t('pairing.stat.rate')} value={rate} testId="pairing-rate" />
        <Stat label={t('pairing.stat.refused')} value={shift.refused} testId="pairing-refused" />
        <Stat label={t('pairing.stat.queued')} value={shift.queue.length} testId="pairing-queued" />
        {b?.batch && (
          <Stat label={t('pairing.stat.batch')} value={`${b.batch.counts.paired} / ${b.batch.count}`} testId="pairing-batch" />
        )}
      </div>

      {authLost && (
        <p role="alert" style={{ ...banner, background: '#fdecec' }}>
          {t('pairing.authLost')}
        </p>
      )}
      {shift.lateRefusals.length > 0 && (
        <div role="alert" style={{ ...banner, background: '#fdecec' }} data-testid="pairing-late-refusals">
          <strong>{t('pairing.late.title', { n: shift.lateRefusals.length })}</strong>
          <ul>
            {shift.lateRefusals.map((e) => (
              <li key={e.key}>
                <span className="mono">
                  {e.deviceKey} ↔ {e.sn ?? e.label}
                </span>
                : {reasonText(t, e.reason ?? 'rejected', e, keyName)}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => update((s) => ({ ...s, lateRefusals: [] }))}>
            {t('pairing.late.ack')}
          </button>
        </div>
      )}

      <form onSubmit={submit} style={{ margin: '16px 0' }}>
        <label style={{ fontSize: 22 }}>
          {t(expect, { key: keyName })}
          <input
            ref={input}
            autoComplete="off"
            spellCheck={false}
            style={{ fontSize: 24, padding: 10, width: '100%' }}
            aria-label={t('pairing.scanField')}
            onKeyDown={(e) => {
              if (e.key === 'Escape') clearPending();
            }}
            data-testid="pairing-scan"
          />
        </label>
        <div
          className="muted"
          style={{ marginTop: 6, minHeight: 36, display: 'flex', gap: 12, alignItems: 'center' }}
          data-testid="pairing-pending"
        >
          {pending.key !== undefined && <span className="mono">{`${keyName}: ${pending.key}`}</span>}
          {pending.label !== undefined && <span className="mono">{`${t('pairing.labelScanned')}: ${pending.label}`}</span>}
          {(pending.key !== undefined || pending.label !== undefined) && (
            <button type="button" onClick={clearPending} data-testid="pairing-clear">
              {t('pairing.clear')}
            </button>
          )}
        </div>
      </form>

      <FlashPanel flash={flash} keyName={keyName} />

      <div style={{ display: 'flex', gap: 12, flexWrap: 'wrap', margin: '16px 0' }}>
        <a className="button primary" href={csvHref} download data-testid="pairing-export">
          {t('pairing.export')}
        </a>
        {shift.queue.length > 0 && <span className="muted">{t('pairing.exportWaiting', { n: shift.queue.length })}</span>}
        <span style={{ flex: 1 }} />
        <button
          type="button"
          onClick={() => {
            if (shift.queue.length > 0) return void window.alert(t('pairing.endBlocked', { n: shift.queue.length }));
            if (window.confirm(t('pairing.endConfirm'))) onEnd();
          }}
          data-testid="pairing-end"
        >
          {t('pairing.end')}
        </button>
      </div>

      <h3>{t('pairing.recent')}</h3>
      <table style={{ width: '100%', borderCollapse: 'collapse' }} data-testid="pairing-recent">
        <tbody>
          {[...shift.queue].reverse().map((e) => (
            <tr key={e.key} style={row}>
              <td className="mono nowrap">{e.deviceKey}</td>
              <td className="mono" style={{ wordBreak: 'break-all' }}>
                {e.label}
              </td>
              <td style={{ color: '#b45309' }}>{t('pairing.state.queued')}</td>
            </tr>
          ))}
          {shift.recent.map((e) => (
            <tr key={e.key} style={row}>
              <td className="mono nowrap">{e.deviceKey}</td>
              <td className="mono">{e.sn ?? e.label}</td>
              <td style={{ color: e.state === 'paired' ? '#1a7f37' : '#c62828' }}>
                {e.state === 'paired' ? t('pairing.state.paired') : reasonText(t, e.reason ?? 'rejected', e, keyName)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type T = ReturnType<typeof useTranslation<'vendor'>>['t'];

function reasonText(t: T, reason: Refusal, e: Partial<PairEntry> & { value?: string }, keyName: string): string {
  return t(`pairing.reason.${reason}`, {
    key: keyName,
    value: e.value ?? (e.deviceKey || e.label || ''),
    deviceKey: e.deviceKey ?? '',
    sn: e.sn ?? '',
    conflict: e.conflict ?? '—',
    message: e.message ?? '',
  });
}

function FlashPanel({ flash, keyName }: { flash: Flash | null; keyName: string }) {
  const { t } = useTranslation('vendor');
  if (!flash) return <div style={{ ...panel, background: '#f5f6f8', color: '#666' }}>{t('pairing.ready')}</div>;
  if (flash.kind === 'refused') {
    const e = { ...(flash.entry ?? {}), value: flash.value };
    return (
      <div
        style={{ ...panel, background: '#c62828', color: '#fff' }}
        role="alert"
        data-testid="pairing-result"
        data-result="refused"
        data-reason={flash.reason}
      >
        <div style={big}>✗ {t('pairing.refused')}</div>
        <div style={{ fontSize: 26 }}>{reasonText(t, flash.reason, e, keyName)}</div>
      </div>
    );
  }
  const e = flash.entry;
  const colours: Record<string, CSSProperties> = {
    paired: { background: '#1a7f37', color: '#fff' },
    queued: { background: '#f59e0b', color: '#1f1300' },
    checking: { background: '#e3e8f0', color: '#223' },
  };
  return (
    <div style={{ ...panel, ...colours[flash.kind] }} role="status" data-testid="pairing-result" data-result={flash.kind}>
      <div style={big}>
        {flash.kind === 'paired'
          ? `✓ ${t('pairing.paired')}`
          : flash.kind === 'queued'
            ? t('pairing.queued')
            : t('pairing.checking')}
      </div>
      <div style={{ fontSize: 26 }} className="mono">
        {e.sn ?? e.label} ↔ {e.deviceKey}
      </div>
      {flash.kind === 'queued' && <div style={{ fontSize: 18 }}>{t('pairing.queuedHint')}</div>}
    </div>
  );
}

function Stat({ label, value, testId }: { label: string; value: string | number; testId: string }) {
  return (
    <div style={{ minWidth: 120 }}>
      <div className="muted small">{label}</div>
      <div style={{ fontSize: 32, fontWeight: 700 }} data-testid={testId}>
        {value}
      </div>
    </div>
  );
}

const frame: CSSProperties = {
  minHeight: '100vh',
  padding: '16px 24px',
  boxSizing: 'border-box',
  maxWidth: 1280,
  margin: '0 auto',
};
const bar: CSSProperties = { display: 'flex', gap: 16, alignItems: 'center', flexWrap: 'wrap' };
const stats: CSSProperties = { display: 'flex', gap: 24, flexWrap: 'wrap', margin: '16px 0' };
const pill: CSSProperties = { padding: '4px 12px', borderRadius: 999, fontWeight: 600 };
const banner: CSSProperties = { padding: 12, borderRadius: 8, margin: '12px 0' };
const panel: CSSProperties = { padding: '24px 28px', borderRadius: 12, minHeight: 150, wordBreak: 'break-all' };
const big: CSSProperties = { fontSize: 48, fontWeight: 800, lineHeight: 1.15 };
const row: CSSProperties = { borderBottom: '1px solid #eee' };
