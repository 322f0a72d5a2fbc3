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
