import { useEffect } from 'react';
import { useI18n } from './i18n.js';
import { NotificationsProvider, useNotifications } from './notifications.js';
import { BindPage, ConnectPage } from './pages/bind.js';
import { DevicePage } from './pages/device.js';
import { MyDevicesPage } from './pages/devices.js';
import { LoginPage } from './pages/login.js';
import { NotificationsPage } from './pages/notifications.js';
import { OrgPage } from './pages/org.js';
import { ScanPage } from './pages/scan.js';
import { Link, navigate, useLocation } from './router.js';
import { useSession } from './session.js';
import { Loading } from './ui.js';

const ADD_DEVICE_PATHS = ['/scan', '/hw/addDevice', '/wwopen/connect/hardware/addDevice'];

export function App() {
  const { session } = useSession();
  const loc = useLocation();
  const signedOut = session === null;
  const onLogin = loc.path === '/login';
  useEffect(() => {
    // Signed out anywhere but the login page: log in, then come back here.
    if (signedOut && !onLogin) {
      navigate(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`, { replace: true });
    }
  }, [signedOut, onLogin]);
  if (session === undefined) return <Loading />;
  if (session === null) return onLogin ? <LoginPage /> : <Loading />;
  if (onLogin) return <LoginPage />;
  return (
    <NotificationsProvider>
      <Shell />
    </NotificationsProvider>
  );
}

function Shell() {
  const { t, lang, setLang } = useI18n();
  const { session, logout } = useSession();
  const { unread } = useNotifications();
  const loc = useLocation();
  const orgs = session?.organisations ?? [];
  const active = (p: string) => (loc.path === p || loc.path.startsWith(`${p}/`) ? 'active' : undefined);
  return (
    <>
      <header className="top">
        <div className="top-row">
          <Link to="/devices" className="brand">
            Bindery
          </Link>
          <div className="top-tools">
            <button type="button" className="link-btn" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang">
              {t('lang.switch')}
            </button>
            <span className="who" title={session?.user.username}>
              {session?.user.display_name}
            </span>
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
          <Link to="/devices" className={active('/devices')}>
            {t('nav.devices')}
          </Link>
          <Link to="/scan" className={ADD_DEVICE_PATHS.includes(loc.path) ? 'active' : undefined}>
            {t('nav.scan')}
          </Link>
          {orgs.map((o) => (
            <Link key={o.id} to={`/orgs/${o.id}`} className={active(`/orgs/${o.id}`)}>
              {o.name}
            </Link>
          ))}
          <Link to="/notifications" className={active('/notifications')} data-testid="nav-notifications">
            {t('nav.notifications')}
            {unread > 0 && (
              <span className="count" data-testid="unread-count">
                {unread}
              </span>
            )}
          </Link>
        </nav>
      </header>
      <main className="page">
        <Routes />
      </main>
    </>
  );
}

function Routes() {
  const loc = useLocation();
  const { t } = useI18n();
  const p = loc.path;
  if (p === '/' || p === '/devices') return <MyDevicesPage />;
  if (ADD_DEVICE_PATHS.includes(p)) return <ScanPage />;
  if (p === '/connect/hardware') return <ConnectPage />;
  if (p === '/bind') return <BindPage />;
  if (p === '/notifications') return <NotificationsPage />;
  let m = /^\/devices\/([^/]+)$/.exec(p);
  if (m) return <DevicePage sn={decodeURIComponent(m[1]!)} />;
  m = /^\/orgs\/([^/]+)(?:\/(members|departments))?$/.exec(p);
  if (m) return <OrgPage orgId={decodeURIComponent(m[1]!)} tab={(m[2] as 'members' | 'departments' | undefined) ?? 'devices'} />;
  return (
    <section className="card">
      <h1>{t('notFound.title')}</h1>
      <Link to="/devices">{t('notFound.home')}</Link>
    </section>
  );
}
