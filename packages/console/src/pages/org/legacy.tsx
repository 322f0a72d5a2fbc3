import { useCallback, useEffect, useState } from 'react';
import { api, type Department, get, type Member, type OrgDetail } from '../../api.js';
import { useI18n } from '../../i18n/index.js';
import { Link } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice, RoleName } from '../../ui.js';
import { DeviceListView } from '../personal/devices.js';

type Tab = 'devices' | 'members' | 'departments';

/** An organisation: its devices (filters, search, pages), members with roles, the department tree, settings. */
export function OrgPage({ orgId, tab }: { orgId: string; tab: Tab }) {
  const { t, err } = useI18n();
  const [org, setOrg] = useState<OrgDetail | null>(null);
  const [depts, setDepts] = useState<Department[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const base = `/api/v1/orgs/${encodeURIComponent(orgId)}`;
  const load = useCallback(async () => {
    try {
      const [o, d] = await Promise.all([get<OrgDetail>(base), get<{ departments: Department[] }>(`${base}/departments`)]);
      setOrg(o);
      setDepts(d.departments);
    } catch (e) {
      setError(e);
    }
  }, [base]);
  useEffect(() => {
    load();
  }, [load]);
  if (error !== null) return <Notice kind="error">{err(error)}</Notice>;
  if (!org || !depts) return <Loading />;
  const root = `/orgs/${encodeURIComponent(orgId)}`;
  return (
    <>
      <div className="page-head">
        <div>
          <h1>{org.organisation.name}</h1>
          {org.me && (
            <p className="muted">
              {t('org.you', { role: '' })}
              <RoleName role={org.me.role} />
            </p>
          )}
        </div>
      </div>
      <nav className="subtabs">
        <Link to={root} className={tab === 'devices' ? 'active' : undefined}>
          {t('org.devices')}
        </Link>
        <Link to={`${root}/members`} className={tab === 'members' ? 'active' : undefined}>
          {t('org.members')}
        </Link>
        <Link to={`${root}/departments`} className={tab === 'departments' ? 'active' : undefined}>
          {t('org.departments')}
        </Link>
      </nav>
      {tab === 'devices' && <DeviceListView key={orgId} url={`${base}/devices`} departments={depts} />}
      {tab === 'members' && <Members base={base} depts={depts} />}
      {tab === 'departments' && <Departments depts={depts} org={org} base={base} onChange={load} />}
    </>
  );
}

function Members({ base, depts }: { base: string; depts: Department[] }) {
  const { t, err, date } = useI18n();
  const [members, setMembers] = useState<Member[] | null>(null);
  const [q, setQ] = useState('');
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    const h = setTimeout(() => {
      get<{ members: Member[] }>(`${base}/members${q.trim() ? `?q=${encodeURIComponent(q.trim())}` : ''}`)
        .then((r) => setMembers(r.members))
        .catch(setError);
    }, 200);
    return () => clearTimeout(h);
  }, [base, q]);
  const deptName = (id: string) => depts.find((d) => d.id === id)?.name ?? id;
  if (error !== null) return <Notice kind="error">{err(error)}</Notice>;
  return (
    <section className="card">
      <input
        type="search"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        placeholder={t('common.search')}
        aria-label={t('common.search')}
      />
      {!members ? (
        <Loading />
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="members">
            <thead>
              <tr>
                <th>{t('org.name')}</th>
                <th>{t('org.role')}</th>
                <th>{t('devices.department')}</th>
                <th>{t('org.scope')}</th>
                <th>{t('org.joined')}</th>
              </tr>
            </thead>
            <tbody>
              {members.map((m) => (
                <tr key={m.user_id}>
                  <td>
                    {m.display_name}
                    <div className="muted small">@{m.username}</div>
                  </td>
                  <td>
                    <span className={`role role-${m.role}`}>
                      <RoleName role={m.role} />
                    </span>
                  </td>
                  <td>{deptName(m.department_id)}</td>
                  <td>{m.role === 'device_admin' ? m.scope.map(deptName).join(', ') : '—'}</td>
                  <td className="muted nowrap">{date(m.joined_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Departments({
  depts,
  org,
  base,
  onChange,
}: {
  depts: Department[];
  org: OrgDetail;
  base: string;
  onChange: () => void;
}) {
  const { t, err } = useI18n();
  const { refresh } = useSession();
  const [msg, setMsg] = useState<string | null>(null);
  const kids = new Map<string | null, Department[]>();
  for (const d of depts) kids.set(d.parent_id, [...(kids.get(d.parent_id) ?? []), d]);
  const tree = (parent: string | null) => {
    const list = kids.get(parent);
    if (!list) return null;
    return (
      <ul className="tree">
        {list.map((d) => (
          <li key={d.id}>
            <span className="tree-node">{d.name}</span>
            {tree(d.id)}
          </li>
        ))}
      </ul>
    );
  };
  const superAdmin = org.me?.role === 'super_admin';
  const toggle = async (on: boolean) => {
    setMsg(null);
    try {
      await api('PATCH', `${base}/settings`, { member_binding: on });
      onChange();
      await refresh();
    } catch (e) {
      setMsg(err(e));
    }
  };
  return (
    <div className="grid2">
      <section className="card">
        <h2>{t('org.departments')}</h2>
        <div data-testid="departments">{tree(null)}</div>
      </section>
      <section className="card">
        <h2>{t('org.settings')}</h2>
        <label className="check">
          <input
            type="checkbox"
            checked={org.organisation.member_binding}
            disabled={!superAdmin}
            onChange={(e) => toggle(e.target.checked)}
          />
          {t('org.memberBinding')}
        </label>
        <p className="hint">{t('org.memberBindingHint')}</p>
        {msg && <Notice kind="error">{msg}</Notice>}
      </section>
    </div>
  );
}
