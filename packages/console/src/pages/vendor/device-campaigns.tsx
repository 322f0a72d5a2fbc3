import { useQuery } from '@tanstack/react-query';
import { Card, Table, Tag } from 'antd';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { formatDate } from '../../i18n/index.js';

/** The device's firmware campaign executions (issue 14; docs/ota.md), on the vendor's device page; hidden when none. */
export function DeviceCampaigns({ vendorId, sn }: { vendorId: string; sn: string }) {
  const { t } = useTranslation('campaigns');
  const q = useQuery({
    queryKey: ['devices', sn, 'campaigns'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/devices/{sn}/campaigns', { params: { path: { sn } } }))).executions,
    refetchInterval: 10_000,
  });
  if (!q.data?.length) return null;
  return (
    <Card title={t('campaigns.deviceCard')} data-testid="device-campaigns">
      <Table
        rowKey="campaign_id"
        size="small"
        pagination={false}
        scroll={{ x: 520 }}
        dataSource={q.data}
        columns={[
          {
            title: t('campaigns.col.name'),
            dataIndex: 'campaign_id',
            render: (id: string) => <Link to={`/vendors/${vendorId}/campaigns/${id}`}>{id}</Link>,
          },
          {
            title: t('campaigns.col.state'),
            dataIndex: 'state',
            render: (s: string) => <Tag>{t(`campaigns.state.${s}`)}</Tag>,
          },
          {
            title: t('campaigns.col.detail'),
            dataIndex: 'detail',
            render: (d: string | null, e: { error_reports?: number }) =>
              d ? t(`campaigns.detail.${d}`, { defaultValue: d, n: e.error_reports ?? 0 }) : '',
          },
          { title: t('campaigns.col.from'), dataIndex: 'from_version' },
          { title: t('campaigns.col.updated'), dataIndex: 'updated_at', render: (v: string) => formatDate(v) },
        ]}
      />
    </Card>
  );
}
