import { AppError } from '../errors.js';

/** Who is acting. Every service call that changes something takes one. */
export type Principal =
  | { kind: 'user'; userId: string; isOperator: boolean }
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

/** Operators act for every vendor; a vendor key or model token only for its own. */
export function canActForVendor(p: Principal, vendorId: string): boolean {
  if (isOperator(p)) return true;
  if (p.kind === 'vendor_key' || p.kind === 'model') return p.vendorId === vendorId;
  return false;
}

export function requireVendor(p: Principal, vendorId: string): void {
  if (!canActForVendor(p, vendorId)) throw new AppError('FORBIDDEN', 'You may not act for this vendor');
}
