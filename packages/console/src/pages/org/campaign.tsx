import { useParams } from 'react-router';
import { CampaignDetail } from '../../components/campaigns/campaign-detail.js';

/** /orgs/:orgId/campaigns/:campaignId (issue 14; docs/ota.md): one of the organisation's campaigns. */
export function Component() {
  const { orgId = '', campaignId = '' } = useParams();
  return <CampaignDetail campaignId={campaignId} backTo={`/orgs/${orgId}/campaigns`} listKey={['orgs', orgId, 'campaigns']} />;
}
