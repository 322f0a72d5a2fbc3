import { useQuery } from '@tanstack/react-query';
import { Select } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { DaysSelect, FleetDashboard } from '../../components/fleet-dashboard.js';
import { useModels } from './models.js';

/** /vendors/:vendorId/dashboard (issue 14 item 6; docs/fleet-dashboard.md): the vendor's whole fleet, or one model. */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('fleet');
  const [days, setDays] = useState(30);
  const [modelId, setModelId] = useState<string | undefined>(undefined);
  const models = useModels(vendorId);
  const q = useQuery({
    queryKey: ['vendors', vendorId, 'fleet-stats', { days, modelId }],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/vendors/{vendorId}/fleet-stats', {
          params: { path: { vendorId }, query: { days, ...(modelId ? { model_id: modelId } : {}) } },
        }),
      ),
    refetchInterval: 60_000,
  });
  return (
    <FleetDashboard
      title={t('fleet.title.vendor')}
      data={q.data}
      error={q.error}
      loading={q.isLoading}
      filters={
        <>
          <Select
            data-testid="fleet-model"
            allowClear
            placeholder={t('fleet.all_models')}
            value={modelId}
            onChange={(v) => setModelId(v)}
            style={{ minWidth: 200 }}
            options={(models.data ?? []).map((m) => ({ value: m.model_id, label: m.name }))}
          />
          <DaysSelect value={days} onChange={setDays} />
        </>
      }
    />
  );
}
