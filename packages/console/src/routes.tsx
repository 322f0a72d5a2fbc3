import { type ComponentType, lazy } from 'react';
import { Navigate, type RouteObject, useParams } from 'react-router';
import { LoginPage } from './pages/account/login.js';
import { NotFoundPage } from './pages/not-found.js';
import { BindPage, ConnectPage } from './pages/personal/bind.js';
import { DevicePage } from './pages/personal/device.js';
import { MyDevicesPage } from './pages/personal/devices.js';
import { NotificationsPage } from './pages/personal/notifications.js';
import { ScanPage } from './pages/personal/scan.js';
import { AppShell } from './shell/app-shell.js';
import { RequireSession } from './shell/require-session.js';

/**
 * THE route table. The phone pages (scan, bind confirmation, my devices, a device) are in the main chunk;
 * every admin page is a lazy chunk (`page(() => import(...))`: the module exports `Component`), so Ant Design
 * and the admin screens load only when someone opens them (docs/console.md, bundle budget).
 * The router is react-router's declarative one (`useRoutes`): its data-router engine would cost the phone
 * path ~15 KB gzipped for loaders it does not use.
 */
export function page(load: () => Promise<{ Component: ComponentType }>) {
  const C = lazy(() =>
    Promise.all([load(), import('./shell/query.js')]).then(([m, q]) => ({
      default: () => (
        <q.QueryProvider>
          <m.Component />
        </q.QueryProvider>
      ),
    })),
  );
  return <C />;
}
function DeviceRoute() {
  const { sn = '' } = useParams();
  return <DevicePage key={sn} sn={sn} />;
}

const orgLayout = page(() => import('./shell/admin-layout.js').then((m) => ({ Component: m.OrgLayout })));
const vendorLayout = page(() => import('./shell/admin-layout.js').then((m) => ({ Component: m.VendorLayout })));
const operatorLayout = page(() => import('./shell/admin-layout.js').then((m) => ({ Component: m.OperatorLayout })));
const legacyOrg = (tab: 'devices' | 'members' | 'departments') =>
  page(() =>
    import('./pages/org/legacy.js').then((m) => ({
      Component: function LegacyOrg() {
        const { orgId = '' } = useParams();
        return <m.OrgPage orgId={orgId} tab={tab} />;
      },
    })),
  );

export const routes: RouteObject[] = [
  { path: '/login', element: <LoginPage /> },
  {
    element: <RequireSession />,
    children: [
      {
        element: <AppShell />,
        children: [
          { index: true, element: <Navigate to="/devices" replace /> },
          { path: 'devices', element: <MyDevicesPage /> },
          { path: 'devices/:sn', element: <DeviceRoute /> },
          { path: 'scan', element: <ScanPage /> },
          { path: 'hw/addDevice', element: <ScanPage /> },
          { path: 'wwopen/connect/hardware/addDevice', element: <ScanPage /> },
          { path: 'connect/hardware', element: <ConnectPage /> },
          { path: 'bind', element: <BindPage /> },
          { path: 'notifications', element: <NotificationsPage /> },
          {
            path: 'orgs/:orgId',
            element: orgLayout,
            children: [
              { index: true, element: legacyOrg('devices') },
              { path: 'devices', element: legacyOrg('devices') },
              { path: 'members', element: page(() => import('./pages/org/members.js')) },
              { path: 'departments', element: page(() => import('./pages/org/departments.js')) },
              { path: 'settings', element: page(() => import('./pages/org/settings.js')) },
              { path: 'webhooks', element: page(() => import('./pages/org/webhooks.js')) },
              { path: '*', element: <NotFoundPage /> },
            ],
          },
          {
            path: 'vendors/:vendorId',
            element: vendorLayout,
            children: [
              { index: true, element: <Navigate to="models" replace /> },
              { path: '*', element: <NotFoundPage /> },
            ],
          },
          {
            path: 'operator',
            element: operatorLayout,
            children: [{ path: '*', element: <NotFoundPage /> }],
          },
          { path: '*', element: <NotFoundPage /> },
        ],
      },
    ],
  },
];
