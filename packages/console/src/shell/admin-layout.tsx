import { useQuery } from '@tanstack/react-query';
import { App as AntApp, ConfigProvider, Grid, Layout, Menu, Result, Typography } from 'antd';
import enUSModule from 'antd/es/locale/en_US.js';
import type { Locale } from 'antd/es/locale/index.js';
import zhCNModule from 'antd/es/locale/zh_CN.js';
import { type ReactNode, Suspense } from 'react';
import { Link, Outlet, useLocation, useParams } from 'react-router';
import { api, unwrap } from '../api/client.js';
import { useI18n } from '../i18n/index.js';
import { type NavItem, operatorNav, orgRole, vendorRole, visibleOrgNav, visibleVendorNav } from '../nav.js';
import { NotFoundPage } from '../pages/not-found.js';
import { useMe } from '../session.js';
import { Loading } from '../ui.js';

// antd's locale files are CommonJS-shaped under NodeNext typing; Vite hands over the default either way.
const enUS = ((enUSModule as { default?: unknown }).default ?? enUSModule) as Locale;
const zhCN = ((zhCNModule as { default?: unknown }).default ?? zhCNModule) as Locale;

/** The per-response style nonce the server put in the page (its CSP has no 'unsafe-inline'). */
const cspNonce = document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content;

/**
 * The admin screens' frame (a lazy chunk: the phone's scan → bind path never loads Ant Design): antd's
 * locale follows the UI language, a side menu on desktop and a top menu on a phone.
 */
export function AdminFrame({
  title,
  base,
  items,
  children,
}: {
  title: ReactNode;
  base: string;
  items: NavItem[];
  children?: ReactNode;
}) {
  const { t, lang } = useI18n();
  const screens = Grid.useBreakpoint();
  const path = useLocation().pathname;
  const phone = !screens.md;
  const full = (i: NavItem) => (i.to ? `${base}/${i.to}` : base);
  // The longest item path that the current path starts with is the selected one.
  const selected =
    items
      .map(full)
      .filter((p) => path === p || path.startsWith(`${p}/`))
      .sort((a, b) => b.length - a.length)[0] ?? (path === base && items[0] ? full(items[0]) : undefined);
  const menu = (
    <Menu
      mode={phone ? 'horizontal' : 'inline'}
      selectedKeys={selected ? [selected] : []}
      items={items.map((i) => ({
        key: full(i),
        label: (
          <Link to={full(i)} data-testid={i.testId}>
            {t(i.label as never)}
          </Link>
        ),
      }))}
      style={phone ? { marginBottom: 12 } : { height: '100%', borderInlineEnd: 0 }}
    />
  );
  return (
    <ConfigProvider
      locale={lang === 'zh' ? zhCN : enUS}
      {...(cspNonce ? { csp: { nonce: cspNonce } } : {})}
      theme={{ token: { colorPrimary: '#165dff', borderRadius: 6 } }}
    >
      <AntApp>
        <div className="admin">
          <Typography.Title level={4} style={{ margin: '0 0 12px' }} data-testid="admin-title">
            {title}
          </Typography.Title>
          <Layout style={{ background: 'transparent' }}>
            {!phone && (
              <Layout.Sider width={200} theme="light" style={{ background: 'transparent', marginRight: 16 }}>
                {menu}
              </Layout.Sider>
            )}
            <Layout.Content style={{ minWidth: 0 }}>
              {phone && menu}
              <Suspense fallback={<Loading />}>{children ?? <Outlet />}</Suspense>
            </Layout.Content>
          </Layout>
        </div>
      </AntApp>
    </ConfigProvider>
  );
}

/** /orgs/:orgId/* — the organisation's admin pages, by the caller's role there. */
export function OrgLayout() {
  const { orgId = '' } = useParams();
  const me = useMe();
  const { t } = useI18n();
  const role = orgRole(me, orgId);
  const known = me.organisations.find((o) => o.id === orgId)?.name;
  const org = useQuery({
    queryKey: ['orgs', orgId],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}', { params: { path: { orgId } } })),
    enabled: !known && role !== null,
  });
  const items = visibleOrgNav(role);
  if (!role || (role !== 'super_admin' && role !== 'device_admin')) {
    return (
      <Result
        status="403"
        title={t('admin.forbidden')}
        extra={<Link to="/devices">{t('notFound.home')}</Link>}
        data-testid="forbidden"
      />
    );
  }
  const name = known ?? (org.data as { organisation?: { name?: string } } | undefined)?.organisation?.name ?? orgId;
  return <AdminFrame title={name} base={`/orgs/${orgId}`} items={items} />;
}

/** /operator/* — the instance's pages, operators only. */
export function OperatorLayout() {
  const me = useMe();
  const { t } = useI18n();
  if (!me.user.is_operator) return <NotFoundPage />;
  return <AdminFrame title={t('nav.operator')} base="/operator" items={operatorNav} />;
}

/** /vendors/:vendorId/* — a vendor's pages, by the caller's vendor role (issue 13). */
export function VendorLayout() {
  const { vendorId = '' } = useParams();
  const me = useMe();
  const { t } = useI18n();
  const role = vendorRole(me, vendorId);
  const vendor = useQuery({
    queryKey: ['vendors', vendorId],
    queryFn: () => unwrap(api.GET('/api/v1/vendors/{vendorId}', { params: { path: { vendorId } } })),
    enabled: role !== null,
  });
  if (!role) {
    return (
      <Result
        status="403"
        title={t('admin.forbiddenVendor')}
        extra={<Link to="/devices">{t('notFound.home')}</Link>}
        data-testid="forbidden"
      />
    );
  }
  const name = vendor.data as { name?: string; vendor?: { name?: string } } | undefined;
  return (
    <AdminFrame
      title={name?.vendor?.name ?? name?.name ?? vendorId}
      base={`/vendors/${vendorId}`}
      items={visibleVendorNav(role)}
    />
  );
}
