import { Alert, Progress, Table, Tag } from 'antd';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import type { paths } from '../../api/schema.js';
import { errorText, formatDate } from '../../i18n/index.js';

/** A campaign as every campaign route answers it. */
export type Campaign =
  paths['/api/v1/campaigns/{campaignId}']['get']['responses'][200]['content']['application/json']['campaign'];

export const STATUS_COLOR: Record<string, string> = {
  running: 'processing',
  paused: 'warning',
  cancelled: 'default',
  completed: 'success',
};

export const STATE_COLOR: Record<string, string> = {
  queued: '#bfbfbf',
  notified: '#69b1ff',
  downloading: '#1677ff',
  succeeded: '#52c41a',
  failed: '#ff4d4f',
  timed_out: '#faad14',
  skipped: '#d9d9d9',
  cancelled: '#8c8c8c',
};

const ended = (c: Campaign) => c.counts.succeeded + c.counts.failed + c.counts.timed_out + c.counts.skipped + c.counts.cancelled;

/** Campaigns with their progress (vendor and organisation lists); names link to `:id` under the current page. */
export function CampaignTable({
  campaigns,
  loading,
  error,
  showOwner,
}: {
  campaigns: Campaign[] | undefined;
  loading: boolean;
  error: unknown;
  /** Vendors see which organisation ran a campaign on their model. */
  showOwner?: boolean;
}) {
  const { t } = useTranslation('campaigns');
  return (
    <>
      {error ? <Alert type="error" showIcon message={errorText(error)} /> : null}
      <Table<Campaign>
        rowKey="id"
        loading={loading}
        dataSource={campaigns ?? []}
        pagination={false}
        scroll={{ x: 720 }}
        locale={{ emptyText: t('campaigns.empty') }}
        data-testid="campaign-list"
        columns={[
          {
            title: t('campaigns.col.name'),
            dataIndex: 'name',
            render: (v: string, c) => (
              <>
                <Link to={c.id}>{v}</Link>
                {showOwner && c.org_id ? (
                  <Tag style={{ marginInlineStart: 8 }} data-testid="campaign-by-org">
                    {t('campaigns.byOrg')}
                  </Tag>
                ) : null}
              </>
            ),
          },
          { title: t('campaigns.col.version'), dataIndex: 'version' },
          {
            title: t('campaigns.col.status'),
            dataIndex: 'status',
            render: (s: string) => <Tag color={STATUS_COLOR[s]}>{t(`campaigns.status.${s}`)}</Tag>,
          },
          {
            title: t('campaigns.col.progress'),
            key: 'progress',
            width: 200,
            render: (_: unknown, c) => (
              <Progress
                percent={Math.floor((ended(c) * 100) / Math.max(1, c.total))}
                success={{ percent: Math.floor((c.counts.succeeded * 100) / Math.max(1, c.total)) }}
                size="small"
                format={() => `${ended(c)}/${c.total}`}
              />
            ),
          },
          { title: t('campaigns.col.stage'), dataIndex: 'stage' },
          { title: t('campaigns.col.created'), dataIndex: 'created_at', render: (v: string) => formatDate(v) },
        ]}
      />
    </>
  );
}
