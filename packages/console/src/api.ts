import { ApiError, api as client, unwrap } from './api/client.js';
import type { paths } from './api/schema.js';

export { ApiError };

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * The phone pages' calls with their hand-kept shapes below, through the same typed client (and its CSRF
 * middleware) as the admin screens; new code calls `api/client.ts` with the generated paths directly.
 */
export async function api<T>(method: Method, url: string, body?: unknown): Promise<T> {
  const [path, search] = url.split('?') as [string, string | undefined];
  const query = search ? Object.fromEntries(new URLSearchParams(search)) : undefined;
  // biome-ignore lint/suspicious/noExplicitAny: a path the caller builds at run time; its shape is the caller's type T
  return unwrap<T>(client.request(method.toLowerCase() as 'get', path as any, { params: { query }, body } as any) as any);
}

export const get = <T>(url: string) => api<T>('GET', url);
export const post = <T>(url: string, body?: unknown) => api<T>('POST', url, body ?? {});

export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---- shapes of the API (docs/binding.md) ----

export type Role = 'super_admin' | 'device_admin' | 'member';
export type DeviceAction = 'view' | 'rename' | 'firmware_upgrade' | 'unbind' | 'reboot' | 'fetch_log' | 'manage_app';

export interface OrgSummary {
  id: string;
  name: string;
  member_binding: boolean;
  role: Role | null;
}

export interface Session {
  user: { id: string; username: string; display_name: string; is_operator: boolean };
  csrf_token: string;
  personal_space: { type: 'user'; id: string };
  organisations: OrgSummary[];
  /** The vendors this person works for, with their vendor role (issue 13); absent on older servers. */
  vendors?: Array<{ id: string; name: string; role: 'vendor_admin' | 'engineer' | 'production' }>;
}

export interface Owner {
  type: 'org' | 'user';
  id: string;
}

/** One device as the lists show it: what GET /api/v1/me/devices declares (generated API types). */
export type DeviceList = paths['/api/v1/me/devices']['get']['responses'][200]['content']['application/json'];
export type DeviceCard = DeviceList['devices'][number];

export interface DevicePage {
  device: DeviceCard & { state: string; device_key: string | null; registered_at: string; activated_at: string | null };
  model: { model_id: string; name: string; product_key: string; binding_mode: string };
  firmware: {
    current: string | null;
    latest: { version: string; notes: string | null; published_at: string } | null;
    upgrade_available: boolean;
  };
  admins: Array<{ user_id: string; display_name: string; role: string }>;
  visible_to: { departments: Array<{ id: string; name: string }>; users: Array<{ user_id: string; display_name: string }> };
  users: Array<{ user_id: string; display_name: string; role: 'owner' | 'user' }>;
  application: { app_key: string; name: string } | null;
  error_reports: Array<{ id: number; errcode: number; errmsg: string; reported_at: string }>;
  logs: Array<{ id: string; req_id: string; size: number; sha256: string; uploaded_at: string }>;
  my_actions: DeviceAction[];
  user_type: number;
}

/**
 * What a scanned code offers (POST /api/v1/scan/resolve), the same shape as a Bluetooth identity's
 * `bind_options`, whose route declares it: taken from the generated API types.
 */
export type ScanResolution =
  paths['/api/v1/bluetooth/identity']['post']['responses'][200]['content']['application/json']['bind_options'];
export type ScanOwner = NonNullable<ScanResolution['owners']>[number];

export interface BindResult {
  sn: string;
  owner: Owner;
  result: 'bound' | 'shared' | 'transferred';
  method: string;
  device: DeviceCard;
}

export interface Department {
  id: string;
  parent_id: string | null;
  name: string;
}

export interface Member {
  user_id: string;
  username: string;
  display_name: string;
  role: Role;
  department_id: string;
  scope: string[];
  joined_at: string;
}

export interface OrgDetail {
  organisation: { id: string; name: string; member_binding: boolean; created_at: string };
  me: { role: Role; department_id: string; scope: string[] } | null;
}

export interface Notification {
  id: number;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  data: Record<string, unknown>;
  created_at: string;
  read: boolean;
}
