import { useParams } from 'react-router';
import { AuditTable } from '../../components/audit-table.js';

/** /orgs/:orgId/audit — the organisation's audit log (its super admins; operators). */
export function Component() {
  const { orgId = '' } = useParams();
  return <AuditTable key={orgId} orgId={orgId} />;
}
