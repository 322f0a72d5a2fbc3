import { useParams } from 'react-router';
import { Webhooks } from '../../components/webhooks.js';

/** /orgs/:orgId/webhooks — the organisation's signed webhooks and their delivery log (components/webhooks.tsx). */
export function WebhooksPage() {
  const { orgId = '' } = useParams();
  return <Webhooks owner={{ kind: 'org', id: orgId }} />;
}

export const Component = WebhooksPage;
