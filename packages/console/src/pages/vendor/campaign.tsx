import { useParams } from 'react-router';
import { CampaignDetail } from '../../components/campaigns/campaign-detail.js';

/** /vendors/:vendorId/campaigns/:campaignId (issue 14; docs/ota.md): one campaign (components/campaigns). */
export function Component() {
  const { vendorId = '', campaignId = '' } = useParams();
  return (
    <CampaignDetail
      campaignId={campaignId}
      backTo={`/vendors/${vendorId}/campaigns`}
      listKey={['vendors', vendorId, 'campaigns']}
    />
  );
}
