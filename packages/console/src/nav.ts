import type { Role, Session } from './api.js';

/**
 * The navigation model: what this person may do decides what the shell shows (issue 12, item 2).
 * Labels are `common` keys so the menus render before an area's own words have loaded.
 */
export interface NavItem {
  to: string;
  label: string;
  testId: string;
  /** Org items: the roles that see them (an operator counts as a super admin). */
  roles?: Role[];
}

export const personalNav: NavItem[] = [
  { to: '/devices', label: 'nav.devices', testId: 'nav-devices' },
  { to: '/scan', label: 'nav.scan', testId: 'nav-scan' },
  { to: '/notifications', label: 'nav.notifications', testId: 'nav-notifications' },
];

const ADMINS: Role[] = ['super_admin', 'device_admin'];
const SUPER: Role[] = ['super_admin'];

/** An organisation's admin pages, relative to /orgs/:orgId. */
export const orgNav: NavItem[] = [
  { to: 'devices', label: 'nav.org.devices', testId: 'nav-org-devices', roles: ADMINS },
  { to: 'dashboard', label: 'nav.org.dashboard', testId: 'nav-org-dashboard', roles: SUPER },
  { to: 'campaigns', label: 'nav.org.campaigns', testId: 'nav-org-campaigns', roles: ADMINS },
  { to: 'members', label: 'nav.org.members', testId: 'nav-org-members', roles: ADMINS },
  { to: 'departments', label: 'nav.org.departments', testId: 'nav-org-departments', roles: SUPER },
  { to: 'settings', label: 'nav.org.settings', testId: 'nav-org-settings', roles: SUPER },
  { to: 'webhooks', label: 'nav.org.webhooks', testId: 'nav-org-webhooks', roles: SUPER },
  { to: 'audit', label: 'nav.org.audit', testId: 'nav-org-audit', roles: SUPER },
  { to: 'merchant', label: 'nav.org.merchant', testId: 'nav-org-merchant', roles: SUPER },
];

/** The operator's pages, relative to /operator. */
export const operatorNav: NavItem[] = [
  { to: '', label: 'nav.operator.health', testId: 'nav-op-health' },
  { to: 'vendors', label: 'nav.operator.vendors', testId: 'nav-op-vendors' },
  { to: 'orgs', label: 'nav.operator.orgs', testId: 'nav-op-orgs' },
  { to: 'people', label: 'nav.operator.people', testId: 'nav-op-people' },
  { to: 'merchants', label: 'nav.operator.merchants', testId: 'nav-op-merchants' },
  { to: 'audit', label: 'nav.operator.audit', testId: 'nav-op-audit' },
  { to: 'settings', label: 'nav.operator.settings', testId: 'nav-op-settings' },
];

/** Vendor roles (issue 13): admin everything; engineer models, firmware, integrations; production the line. */
export type VendorRole = 'vendor_admin' | 'engineer' | 'production';
const V_ALL: VendorRole[] = ['vendor_admin', 'engineer', 'production'];
const V_ENG: VendorRole[] = ['vendor_admin', 'engineer'];
const V_PROD: VendorRole[] = ['vendor_admin', 'production'];

/** A vendor's pages, relative to /vendors/:vendorId (the pairing station is full-screen, outside the frame). */
export const vendorNav: Array<NavItem & { vendorRoles: VendorRole[] }> = [
  { to: 'dashboard', label: 'nav.vendor.dashboard', testId: 'nav-v-dashboard', vendorRoles: V_ALL },
  { to: 'models', label: 'nav.vendor.models', testId: 'nav-v-models', vendorRoles: V_ALL },
  { to: 'devices', label: 'nav.vendor.devices', testId: 'nav-v-devices', vendorRoles: V_ALL },
  { to: 'batches', label: 'nav.vendor.batches', testId: 'nav-v-batches', vendorRoles: V_PROD },
  { to: 'relations', label: 'nav.vendor.relations', testId: 'nav-v-relations', vendorRoles: V_PROD },
  { to: 'pairing', label: 'nav.vendor.pairing', testId: 'nav-v-pairing', vendorRoles: V_PROD },
  { to: 'firmware', label: 'nav.vendor.firmware', testId: 'nav-v-firmware', vendorRoles: V_ENG },
  { to: 'campaigns', label: 'nav.vendor.campaigns', testId: 'nav-v-campaigns', vendorRoles: V_ENG },
  { to: 'integrations', label: 'nav.vendor.integrations', testId: 'nav-v-integrations', vendorRoles: V_ENG },
  { to: 'people', label: 'nav.vendor.people', testId: 'nav-v-people', vendorRoles: ['vendor_admin'] },
  { to: 'keys', label: 'nav.vendor.keys', testId: 'nav-v-keys', vendorRoles: ['vendor_admin'] },
];

/** The vendor role that decides a vendor's menu: an operator acts for every vendor as its admin. */
export function vendorRole(s: Session, vendorId: string): VendorRole | null {
  if (s.user.is_operator) return 'vendor_admin';
  const v = (s as Session & { vendors?: Array<{ id: string; role: VendorRole }> }).vendors?.find((x) => x.id === vendorId);
  return v?.role ?? null;
}

export function visibleVendorNav(role: VendorRole | null): NavItem[] {
  return role ? vendorNav.filter((i) => i.vendorRoles.includes(role)) : [];
}

/** The organisations this person administers (members do not get an admin section). */
export function administeredOrgs(s: Session): Session['organisations'] {
  return s.organisations.filter((o) => o.role === 'super_admin' || o.role === 'device_admin');
}

/** The role that decides an org's menu: an operator administers every organisation. */
export function orgRole(s: Session, orgId: string): Role | null {
  if (s.user.is_operator) return 'super_admin';
  return s.organisations.find((o) => o.id === orgId)?.role ?? null;
}

export function visibleOrgNav(role: Role | null): NavItem[] {
  return role ? orgNav.filter((i) => !i.roles || i.roles.includes(role)) : [];
}
