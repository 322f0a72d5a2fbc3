import { type FormEvent, useEffect, useState } from 'react';
import {
  ApiError,
  type BindResult,
  type Department,
  get,
  type Member,
  post,
  type ScanOwner,
  type ScanResolution,
} from '../../api.js';
import { reasonText, useI18n } from '../../i18n/index.js';
import { Link, navigate, useLocation } from '../../router.js';
import { ReturnToApp } from '../../third-party.js';
import { Loading, Notice, RoleName } from '../../ui.js';

/** /connect/hardware?… — what a phone opens from a label or a device screen: the whole URL is the code. */
export function ConnectPage() {
  const loc = useLocation();
  return <CodePage content={loc.href} />;
}

/** /bind?code=… — the scanner's way to the same page. */
export function BindPage() {
  const loc = useLocation();
  return <CodePage content={loc.query.get('code') ?? ''} />;
}

function CodePage({ content }: { content: string }) {
  const { t, err, validity } = useI18n();
  const [res, setRes] = useState<ScanResolution | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    setRes(null);
    setError(null);
    post<ScanResolution>('/api/v1/scan/resolve', { content })
      .then((r) => {
        if (!live) return;
        if (r.action === 'choose_method') navigate(r.kind === 'bluetooth_discovery' ? '/bluetooth' : '/scan', { replace: true });
        // A bound device the scanner may see (its organisation's admin, its owner): its page, not a dead end.
        else if (r.validity === 'bound' && r.device_page) navigate(`${r.device_page}?scanned=bound`, { replace: true });
        else setRes(r);
      })
      .catch((e) => live && setError(e ?? new Error('failed')));
    return () => {
      live = false;
    };
  }, [content]);

  if (error)
    return (
      <div className="narrow">
        <Problem text={err(error)} />
      </div>
    );
  if (!res)
    return (
      <div className="narrow">
        <p className="muted">{t('connect.checking')}</p>
      </div>
    );
  if (res.validity !== 'ok') {
    return (
      <div className="narrow">
        <Problem text={validity(res.validity, res.message)} validity={res.validity} devicePage={res.device_page} />
      </div>
    );
  }
  if (res.action === 'login') return <LoginConfirm res={res} content={content} />;
  if (res.action === 'bind') return <BindConfirm res={res} proof={{ content }} />;
  return (
    <div className="narrow">
      <Problem text={validity(res.validity, res.message)} />
    </div>
  );
}

function Problem({ text, validity, devicePage }: { text: string; validity?: string; devicePage?: string }) {
  const { t } = useI18n();
  return (
    <section className="card problem" data-testid="code-problem" data-validity={validity}>
      <div className="big-icon" aria-hidden="true">
        !
      </div>
      <h1>{t('connect.problem')}</h1>
      <Notice kind="error">{text}</Notice>
      <div className="row">
        <Link to="/scan" className="button">
          {t('connect.scanAgain')}
        </Link>
        {devicePage && (
          <Link to={devicePage} className="button">
            {t('bind.openDevice')}
          </Link>
        )}
      </div>
    </section>
  );
}

function LoginConfirm({ res, content }: { res: ScanResolution; content: string }) {
  const { t, err } = useI18n();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await post<{ device_page: string }>('/api/v1/scan/login', { content });
      navigate(r.device_page, { replace: true });
    } catch (e) {
      setError(err(e));
      setBusy(false);
    }
  };
  return (
    <div className="narrow">
      <section className="card">
        <h1>{t('connect.loginTitle')}</h1>
        <DeviceSummary res={res} />
        <p>{t('connect.loginText', { sn: res.device?.sn ?? '' })}</p>
        {error && <Notice kind="error">{error}</Notice>}
        <button type="button" className="primary wide" disabled={busy} onClick={confirm}>
          {t('connect.loginConfirm')}
        </button>
      </section>
    </div>
  );
}

function DeviceSummary({ res }: { res: ScanResolution }) {
  const { t } = useI18n();
  const d = res.device;
  if (!d) return null;
  return (
    <dl className="facts">
      <dt>{t('bind.model')}</dt>
      <dd data-testid="bind-model">{d.model_name}</dd>
      <dt>{t('bind.sn')}</dt>
      <dd className="mono" data-testid="bind-sn">
        {d.sn}
      </dd>
      <dt>{t('bind.defaultName')}</dt>
      <dd>{d.default_name}</dd>
    </dl>
  );
}

const ownerKey = (o: { type: string; id: string }) => `${o.type}:${o.id}`;

/**
 * The confirmation page: model, SN, default name; owner, visibility range, remark name; confirm.
 * `proof` is what the bind sends as the proof of possession: the scanned code, or the ticket the
 * Bluetooth discovery page got for the device's identity (pages/personal/bluetooth.tsx). `onBound`
 * replaces the "bound" card (that page goes on to the device page).
 */
export function BindConfirm({
  res,
  proof,
  onBound,
}: {
  res: ScanResolution;
  proof: { content: string } | { bluetooth_ticket: string };
  onBound?: (r: BindResult) => void;
}) {
  const { t, err } = useI18n();
  const owners = res.owners ?? [];
  const [owner, setOwner] = useState<string>(() => {
    const first = owners.find((o) => o.may_bind);
    return first ? ownerKey(first) : '';
  });
  const [remark, setRemark] = useState('');
  const [code, setCode] = useState('');
  // The resolve answer says when the code is needed; the bind answer may still ask (VERIF_CODE_REQUIRED).
  const [asked, setAsked] = useState(false);
  const needCode = !!res.device?.requires_verif_code || asked;
  const [enableApp, setEnableApp] = useState(false);
  const [depts, setDepts] = useState<string[]>([]);
  const [users, setUsers] = useState<string[]>([]);
  const [done, setDone] = useState<BindResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const chosen = owners.find((o) => ownerKey(o) === owner);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!chosen) return;
    setBusy(true);
    setError(null);
    try {
      const r = await post<BindResult>('/api/v1/bind', {
        ...proof,
        owner: { type: chosen.type, id: chosen.id },
        ...(remark.trim() ? { remark_name: remark.trim() } : {}),
        ...(code.trim() ? { verif_code: code.trim() } : {}),
        ...(chosen.type === 'org' && (depts.length || users.length) ? { visible_to: { departments: depts, users } } : {}),
        ...(enableApp ? { enable_app: true } : {}),
      });
      if (onBound) onBound(r);
      else setDone(r);
    } catch (x) {
      const c = (x as { code?: string }).code;
      if (c === 'VERIF_CODE_REQUIRED') setAsked(true);
      setError(c === 'VERIF_CODE_REQUIRED' ? null : err(x));
    } finally {
      setBusy(false);
    }
  };

  if (done) {
    const owned = owners.find((o) => o.type === done.owner.type && o.id === done.owner.id);
    const ownerName = owned?.type === 'user' ? t('bind.personal') : (owned?.name ?? done.device.owner.name);
    return (
      <div className="narrow">
        <section className="card done" data-testid="bind-done">
          <div className="big-icon ok" aria-hidden="true">
            ✓
          </div>
          <h1>
            {done.result === 'shared'
              ? t('bind.doneShared')
              : done.result === 'transferred'
                ? t('bind.doneTransferred')
                : t('bind.done', { owner: ownerName })}
          </h1>
          <p className="mono">{done.device.remark_name ?? done.device.default_name}</p>
          <ReturnToApp result={done.result} sn={done.sn} auto />
          <div className="stack">
            <Link to={`/devices/${encodeURIComponent(done.sn)}`} className="button primary wide">
              {t('bind.openDevice')}
            </Link>
            <Link to="/scan" className="button wide">
              {t('bind.another')}
            </Link>
          </div>
        </section>
      </div>
    );
  }

  return (
    <div className="narrow">
      <form className="card" onSubmit={submit} data-testid="bind-confirm">
        <h1>{t('bind.title')}</h1>
        <DeviceSummary res={res} />
        <fieldset>
          <legend>{t('bind.owner')}</legend>
          {owners.map((o) => (
            <OwnerOption key={ownerKey(o)} o={o} checked={owner === ownerKey(o)} onPick={() => setOwner(ownerKey(o))} />
          ))}
          {!owners.some((o) => o.may_bind) && <Notice kind="error">{t('bind.noOwner')}</Notice>}
        </fieldset>
        {chosen?.effect === 'share' && <Notice kind="info">{t('bind.effectShare')}</Notice>}
        {chosen?.effect === 'take_over' && <Notice kind="info">{t('bind.effectTakeOver')}</Notice>}
        {chosen?.type === 'org' && (
          <Visibility
            key={chosen.id}
            orgId={chosen.id}
            pickable={chosen.pickable ?? 'all'}
            depts={depts}
            users={users}
            setDepts={setDepts}
            setUsers={setUsers}
          />
        )}
        <label>
          {t('bind.remark')}
          <input
            name="remark_name"
            value={remark}
            maxLength={64}
            onChange={(e) => setRemark(e.target.value)}
            placeholder={t('bind.remarkHint')}
          />
        </label>
        {asked && (
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
              inputMode="numeric"
              pattern="[0-9]{6}"
              maxLength={6}
              onChange={(e) => setCode(e.target.value)}
              required
            />
            <span className="hint">{t('scan.verifHint')}</span>
          </label>
        )}
        {res.device?.associated_app && chosen?.type === 'org' && (
          <label className="check">
            <input type="checkbox" checked={enableApp} onChange={(e) => setEnableApp(e.target.checked)} />
            {t('bind.enableApp', { name: res.device.associated_app.name })}
          </label>
        )}
        {error && (
          <Notice kind="error" testId="bind-error">
            {error}
          </Notice>
        )}
        <button type="submit" className="primary wide" disabled={busy || !chosen?.may_bind}>
          {busy ? t('bind.binding') : t('bind.confirm')}
        </button>
      </form>
    </div>
  );
}

function OwnerOption({ o, checked, onPick }: { o: ScanOwner; checked: boolean; onPick: () => void }) {
  const { t, lang } = useI18n();
  return (
    <label className={`owner ${o.may_bind ? '' : 'disabled'}`} data-testid={`owner-${o.type}`}>
      <input type="radio" name="owner" checked={checked} disabled={!o.may_bind} onChange={onPick} />
      <span>
        <strong>{o.type === 'user' ? t('bind.personal') : o.name}</strong>
        {o.type === 'org' && (
          <span className="muted">
            {' · '}
            <RoleName role={o.role} />
          </span>
        )}
        {!o.may_bind && o.reason && (
          <small className="reason" data-testid="owner-reason">
            {reasonText(lang, o.reason.code ?? '', o.reason.message ?? '')}
          </small>
        )}
      </span>
    </label>
  );
}

/** Departments (and people) the binder may put in the device's range: `pickable` limits them. */
function Visibility(props: {
  orgId: string;
  pickable: 'all' | string[];
  depts: string[];
  users: string[];
  setDepts(d: string[]): void;
  setUsers(u: string[]): void;
}) {
  const { t } = useI18n();
  const { orgId, pickable, depts, users, setDepts, setUsers } = props;
  const [tree, setTree] = useState<Department[] | null>(null);
  const [people, setPeople] = useState<Member[]>([]);
  useEffect(() => {
    setDepts([]);
    setUsers([]);
    get<{ departments: Department[] }>(`/api/v1/orgs/${encodeURIComponent(orgId)}/departments`)
      .then((r) => setTree(r.departments))
      .catch(() => setTree([]));
    get<{ members: Member[] }>(`/api/v1/orgs/${encodeURIComponent(orgId)}/members`)
      .then((r) => setPeople(r.members))
      .catch((e) => (e instanceof ApiError ? setPeople([]) : undefined));
  }, [orgId, setDepts, setUsers]);
  if (!tree) return <Loading />;
  const allowed = (id: string) => pickable === 'all' || pickable.includes(id) || underAllowed(tree, id, pickable);
  const ordered = flatten(tree);
  const toggle = (list: string[], id: string, set: (v: string[]) => void) =>
    set(list.includes(id) ? list.filter((x) => x !== id) : [...list, id]);
  return (
    <fieldset>
      <legend>{t('bind.visibility')}</legend>
      <p className="hint">{t('bind.visibilityHint')}</p>
      <div className="checks">
        {ordered
          .filter(({ d }) => allowed(d.id))
          .map(({ d, depth }) => (
            <label key={d.id} className="check" style={{ paddingLeft: `${depth * 16}px` }}>
              <input type="checkbox" checked={depts.includes(d.id)} onChange={() => toggle(depts, d.id, setDepts)} />
              {d.name}
            </label>
          ))}
      </div>
      {people.length > 0 && (
        <details className="visibility-people">
          <summary>{t('bind.people')}</summary>
          <div className="checks">
            {people
              .filter((p) => allowed(p.department_id))
              .map((p) => (
                <label key={p.user_id} className="check">
                  <input
                    type="checkbox"
                    checked={users.includes(p.user_id)}
                    onChange={() => toggle(users, p.user_id, setUsers)}
                  />
                  {p.display_name} <span className="muted">@{p.username}</span>
                </label>
              ))}
          </div>
        </details>
      )}
    </fieldset>
  );
}

function flatten(tree: Department[]): Array<{ d: Department; depth: number }> {
  const kids = new Map<string | null, Department[]>();
  for (const d of tree) kids.set(d.parent_id, [...(kids.get(d.parent_id) ?? []), d]);
  const out: Array<{ d: Department; depth: number }> = [];
  const walk = (parent: string | null, depth: number) => {
    for (const d of kids.get(parent) ?? []) {
      out.push({ d, depth });
      walk(d.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

/** A department inside a pickable subtree is pickable too. */
function underAllowed(tree: Department[], id: string, roots: string[]): boolean {
  const byId = new Map(tree.map((d) => [d.id, d]));
  let cur = byId.get(id);
  while (cur) {
    if (roots.includes(cur.id)) return true;
    cur = cur.parent_id ? byId.get(cur.parent_id) : undefined;
  }
  return false;
}
