import { type ComponentType, lazy } from 'react';
import { Navigate, type RouteObject, useParams } from 'react-router';
import { LoginPage } from './pages/account/login.js';
import { NotFoundPage } from './pages/not-found.js';
import { BindPage, ConnectPage } from './pages/personal/bind.js';
import { DevicePage } from './pages/personal/device.js';
import { AppShell } from './shell/app-shell.js';
import { RequireSession } from './shell/require-session.js';

/**
 * THE route table. The phone pages (scan, bind confirmation, my devices, a device) are in the main chunk;
 * every admin page is a lazy chunk (`page(() => import(...))`: the module exports `Component`), so Ant Design
 * and the admin screens load only when someone opens them (docs/console.md, bundle budget).
 * The router is react-router's declarative one (`useRoutes`): its data-router engine would cost the phone
 * path ~15 KB gzipped for loaders it does not use.
 */
/**
 * A phone page that is not on every phone's way (the list, the scanner, the inbox): its own small chunk,
 * without the admin screens' Query provider. The label's own path (sign in → confirm → bind → the device)
 * stays in the main chunk.
 */
function phonePage<K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) {
  const C = lazy(async () => ({ default: (await load())[name] as ComponentType }));
  return <C />;
}
const myDevices = phonePage(() => import('./pages/personal/devices.js'), 'MyDevicesPage');
const scan = phonePage(() => import('./pages/personal/scan.js'), 'ScanPage');
const inbox = phonePage(() => import('./pages/personal/notifications.js'), 'NotificationsPage');
const bluetooth = phonePage(() => import('./pages/personal/bluetooth.js'), 'BluetoothPage');

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
const orgDevices = page(() => import('./pages/org/devices.js'));

export const routes: RouteObject[] = [
  { path: '/login', element: <LoginPage /> },
  // Opened before (or while) signing in; each page loads its own chunk.
  { path: '/invite', element: page(() => import('./pages/account/invite.js')) },
  { path: '/reset-password', element: page(() => import('./pages/account/reset-password.js')) },
  { path: '/signup', element: page(() => import('./pages/account/signup.js')) },
  {
    element: <RequireSession />,
    children: [
      // Full screen for a production-line PC: outside the app shell and the admin frame (issue 13 item 6).
      { path: 'vendors/:vendorId/pairing', element: page(() => import('./pages/vendor/pairing.js')) },
      {
        element: <AppShell />,
        children: [
          { index: true, element: <Navigate to="/devices" replace /> },
          { path: 'devices', element: myDevices },
          { path: 'devices/:sn', element: <DeviceRoute /> },
          { path: 'scan', element: scan },
          { path: 'hw/addDevice', element: scan },
          { path: 'wwopen/connect/hardware/addDevice', element: scan },
          { path: 'connect/hardware', element: <ConnectPage /> },
          { path: 'bind', element: <BindPage /> },
          { path: 'bluetooth', element: bluetooth },
          { path: 'notifications', element: inbox },
          { path: 'account', element: page(() => import('./pages/account/account.js')) },
          {
            path: 'orgs/:orgId',
            element: orgLayout,
            children: [
              { index: true, element: orgDevices },
              { path: 'devices', element: orgDevices },
              { path: 'audit', element: page(() => import('./pages/org/audit.js')) },
              { path: 'members', element: page(() => import('./pages/org/members.js')) },
              { path: 'departments', element: page(() => import('./pages/org/departments.js')) },
              { path: 'settings', element: page(() => import('./pages/org/settings.js')) },
              { path: 'webhooks', element: page(() => import('./pages/org/webhooks.js')) },
              { path: 'merchant', element: page(() => import('./pages/org/merchant.js')) },
              { path: 'dashboard', element: page(() => import('./pages/org/dashboard.js')) },
              { path: 'campaigns', element: page(() => import('./pages/org/campaigns.js')) },
              { path: 'campaigns/:campaignId', element: page(() => import('./pages/org/campaign.js')) },
              { path: '*', element: <NotFoundPage /> },
            ],
          },
          {
            path: 'vendors/:vendorId',
            element: vendorLayout,
            children: [
              { index: true, element: <Navigate to="models" replace /> },
              { path: 'models', element: page(() => import('./pages/vendor/models.js')) },
              { path: 'models/:modelId', element: page(() => import('./pages/vendor/model.js')) },
              { path: 'devices', element: page(() => import('./pages/vendor/devices.js')) },
              { path: 'devices/:sn', element: page(() => import('./pages/vendor/device.js')) },
              { path: 'integrations', element: page(() => import('./pages/vendor/integrations.js')) },
              { path: 'batches', element: page(() => import('./pages/vendor/batches.js')) },
              { path: 'batches/:batchId', element: page(() => import('./pages/vendor/batches.js')) },
              { path: 'relations', element: page(() => import('./pages/vendor/relations.js')) },
              { path: 'firmware', element: page(() => import('./pages/vendor/firmware.js')) },
              { path: 'campaigns', element: page(() => import('./pages/vendor/campaigns.js')) },
              { path: 'campaigns/:campaignId', element: page(() => import('./pages/vendor/campaign.js')) },
              { path: 'people', element: page(() => import('./pages/vendor/people.js')) },
              { path: 'keys', element: page(() => import('./pages/vendor/keys.js')) },
              { path: 'dashboard', element: page(() => import('./pages/vendor/dashboard.js')) },
              { path: '*', element: <NotFoundPage /> },
            ],
          },
          {
            path: 'operator',
            element: operatorLayout,
            children: [
              { index: true, element: page(() => import('./pages/operator/health.js')) },
              { path: 'vendors', element: page(() => import('./pages/operator/vendors.js')) },
              { path: 'orgs', element: page(() => import('./pages/operator/orgs.js')) },
              { path: 'merchants', element: page(() => import('./pages/operator/merchants.js')) },
              { path: 'audit', element: page(() => import('./pages/operator/audit.js')) },
              { path: 'people', element: page(() => import('./pages/operator/people.js')) },
              { path: '*', element: <NotFoundPage /> },
            ],
          },
          { path: '*', element: <NotFoundPage /> },
        ],
      },
    ],
  },
];
