import { AuditTable } from '../../components/audit-table.js';

/** /operator/audit — the whole instance's audit log (operators). */
export function Component() {
  return <AuditTable />;
}
