import { AppError } from '../errors.js';

/** A person's role at a vendor (issue 13): admin everything; engineer the product; production the line. */
export type VendorRole = 'vendor_admin' | 'engineer' | 'production';
export const VENDOR_ROLES: readonly VendorRole[] = ['vendor_admin', 'engineer', 'production'];

/**
 * What acting for a vendor may mean. `read`: the vendor, its models and settings to look at;
 * `devices`: the fleet to read; `devices.write`: register and unregister SNs; the rest name the areas.
 */
export type VendorCapability =
  | 'read'
  | 'devices'
  | 'devices.write'
  | 'models'
  | 'firmware'
  | 'integrations'
  | 'batches'
  | 'relations'
  | 'pairing'
  | 'keys'
  | 'people';

/** The one table of who may do what at a vendor (docs/accounts.md, "Vendor people"). */
const VENDOR_ROLE_CAPS: Record<VendorRole, ReadonlySet<VendorCapability>> = {
  vendor_admin: new Set<VendorCapability>([
    'read',
    'devices',
    'devices.write',
    'models',
    'firmware',
    'integrations',
    'batches',
    'relations',
    'pairing',
    'keys',
    'people',
  ]),
  engineer: new Set<VendorCapability>(['read', 'devices', 'models', 'firmware', 'integrations']),
  production: new Set<VendorCapability>(['read', 'devices', 'batches', 'relations', 'pairing']),
};

/** Who is acting. Every service call that changes something takes one. */
export type Principal =
  | {
      kind: 'user';
      userId: string;
      isOperator: boolean;
      /** The person's vendor roles by vendor id, loaded where the session or token is resolved. */
      vendors?: Readonly<Record<string, VendorRole>>;
    }
  | { kind: 'vendor_key'; vendorId: string; tokenId: string }
  | { kind: 'model'; modelId: string; vendorId: string }
  | { kind: 'system'; name: string };

export const SYSTEM_CLI: Principal = { kind: 'system', name: 'cli' };

export function isOperator(p: Principal): boolean {
  return (p.kind === 'user' && p.isOperator) || p.kind === 'system';
}

export function requireOperator(p: Principal): void {
  if (!isOperator(p)) throw new AppError('FORBIDDEN', 'Only an operator may do this');
}

/** The person's role at this vendor, if they are one of its people. */
export function vendorRoleOf(p: Principal, vendorId: string): VendorRole | null {
  return p.kind === 'user' ? (p.vendors?.[vendorId] ?? null) : null;
}

/**
 * Operators act for every vendor; a vendor key or model token for its own in everything but its
 * people (machines do not invite people); a vendor's people as their role allows. Without a
 * capability only what a vendor admin may do is allowed: a new call site is closed until it names one.
 */
export function canActForVendor(p: Principal, vendorId: string, capability?: VendorCapability): boolean {
  if (isOperator(p)) return true;
  if (p.kind === 'vendor_key' || p.kind === 'model') return p.vendorId === vendorId && capability !== 'people';
  const role = vendorRoleOf(p, vendorId);
  if (role === null) return false;
  return capability === undefined ? role === 'vendor_admin' : VENDOR_ROLE_CAPS[role].has(capability);
}

export function requireVendor(p: Principal, vendorId: string, capability?: VendorCapability): void {
  if (!canActForVendor(p, vendorId, capability)) throw new AppError('FORBIDDEN', 'You may not act for this vendor');
}

/** The vendors a person may act for at all (any role); operators and keys are answered elsewhere. */
export function memberVendorIds(p: Principal): string[] {
  return p.kind === 'user' && p.vendors ? Object.keys(p.vendors) : [];
}
