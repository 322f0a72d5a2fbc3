import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { DaysSelect, FleetDashboard } from '../../components/fleet-dashboard.js';

/** /orgs/:orgId/dashboard (issue 14 item 6; docs/fleet-dashboard.md): the devices the organisation owns, for its super admins. */
export function Component() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('fleet');
  const [days, setDays] = useState(30);
  const q = useQuery({
    queryKey: ['orgs', orgId, 'fleet-stats', { days }],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}/fleet-stats', { params: { path: { orgId }, query: { days } } })),
    refetchInterval: 60_000,
  });
  return (
    <FleetDashboard
      title={t('fleet.title.org')}
      data={q.data}
      error={q.error}
      loading={q.isLoading}
      filters={<DaysSelect value={days} onChange={setDays} />}
    />
  );
}
