import { Suspense } from 'react';
import { Outlet, useLocation } from 'react-router';
import { SetupBanner } from '../components/setup-banner.js';
import { useI18n } from '../i18n/index.js';
import { administeredOrgs, personalNav } from '../nav.js';
import { NotificationsProvider, useNotifications } from '../notifications.js';
import { Link, navigate } from '../router.js';
import { useMe, useSession } from '../session.js';
import { Loading } from '../ui.js';

const ADD_DEVICE_PATHS = ['/scan', '/hw/addDevice', '/wwopen/connect/hardware/addDevice'];

/** The signed-in frame: brand, language, who, and the sections this person may use. */
export function AppShell() {
  return (
    <NotificationsProvider>
      <Header />
      <main className="page">
        <SetupBanner />
        <Suspense fallback={<Loading />}>
          <Outlet />
        </Suspense>
      </main>
    </NotificationsProvider>
  );
}

function Header() {
  const { t, lang, setLang } = useI18n();
  const { logout } = useSession();
  const me = useMe();
  const { unread } = useNotifications();
  const path = useLocation().pathname;
  const active = (p: string) => (path === p || path.startsWith(`${p}/`) ? 'active' : undefined);
  const orgs = administeredOrgs(me);
  return (
    <header className="top">
      <div className="top-row">
        <Link to="/devices" className="brand">
          Bindery
        </Link>
        <div className="top-tools">
          <button type="button" className="link-btn" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang">
            {t('lang.switch')}
          </button>
          <Link to="/account" className="who" title={me.user.username} data-testid="nav-account">
            {me.user.display_name}
          </Link>
          <button
            type="button"
            className="link-btn"
            onClick={async () => {
              await logout();
              navigate('/login', { replace: true });
            }}
          >
            {t('nav.logout')}
          </button>
        </div>
      </div>
      <nav className="tabs">
        {personalNav.map((i) => (
          <Link
            key={i.to}
            to={i.to}
            data-testid={i.testId}
            className={(i.to === '/scan' ? ADD_DEVICE_PATHS.includes(path) : active(i.to)) ? 'active' : undefined}
          >
            {t(i.label as never)}
            {i.to === '/notifications' && unread > 0 && (
              <span className="count" data-testid="unread-count">
                {unread}
              </span>
            )}
          </Link>
        ))}
        {orgs.map((o) => (
          <Link key={o.id} to={`/orgs/${o.id}`} className={active(`/orgs/${o.id}`)} data-testid={`nav-org-${o.id}`}>
            {o.name}
          </Link>
        ))}
        {(me.vendors ?? []).map((v) => (
          <Link key={v.id} to={`/vendors/${v.id}`} className={active(`/vendors/${v.id}`)} data-testid={`nav-vendor-${v.id}`}>
            {v.name}
          </Link>
        ))}
        {me.user.is_operator && (
          <Link to="/operator" className={active('/operator')} data-testid="nav-operator">
            {t('nav.operator')}
          </Link>
        )}
      </nav>
    </header>
  );
}
