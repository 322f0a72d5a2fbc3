import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Space, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { CampaignForm } from '../../components/campaigns/campaign-form.js';
import { CampaignTable } from '../../components/campaigns/campaign-list.js';
import { useDepartments } from '../../components/department-tree.js';
import { withTestId } from '../../components/test-id.js';
import { orgRole } from '../../nav.js';
import { useMe } from '../../session.js';

/**
 * /orgs/:orgId/campaigns (issue 14; docs/ota.md): an organisation's admins upgrade their own
 * devices, of models whose vendor allows it, with an image that vendor published — by department,
 * in a maintenance window read in the organisation's time zone (set on the settings page). A
 * device admin's campaigns reach only the devices in their range, and they list only their own.
 * The list, form and detail are components/campaigns/, shared with the vendor's pages.
 */
export function Component() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('campaigns');
  const { message } = App.useApp();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const listKey = ['orgs', orgId, 'campaigns'];
  const list = useQuery({
    queryKey: listKey,
    queryFn: async () => (await unwrap(api.GET('/api/v1/orgs/{orgId}/campaigns', { params: { path: { orgId } } }))).campaigns,
    refetchInterval: 5_000,
  });
  const options = useQuery({
    queryKey: ['orgs', orgId, 'campaign-models'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/orgs/{orgId}/campaign-models', { params: { path: { orgId } } }))).models,
  });
  const org = useQuery({
    queryKey: ['orgs', orgId],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}', { params: { path: { orgId } } })),
  });
  const depts = useDepartments(orgId);
  const superAdmin = orgRole(useMe(), orgId) === 'super_admin';
  const zone = org.data?.organisation?.time_zone ?? null;
  const [creating, setCreating] = useState(false);
  const none = options.data !== undefined && options.data.length === 0;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('campaigns.title')}
        </Typography.Title>
        <Button type="primary" disabled={none} onClick={() => setCreating(true)} {...withTestId('campaign-new')}>
          {t('campaigns.new')}
        </Button>
      </Space>
      <Typography.Paragraph type="secondary">
        {t('campaigns.orgIntro')} {!superAdmin && t('campaigns.orgIntroScoped')}
      </Typography.Paragraph>
      {none && <Alert type="info" showIcon message={t('campaigns.orgNone')} data-testid="campaign-org-none" />}
      <TimeZone orgId={orgId} zone={zone} loading={org.isLoading} canChange={superAdmin} />
      <CampaignTable campaigns={list.data} loading={list.isLoading} error={list.error} />
      {creating && (
        <CampaignForm
          models={(options.data ?? []).map((m) => ({
            value: m.model_id,
            label: t('campaigns.orgModel', { name: m.name, vendor: m.vendor_name, devices: m.devices }),
          }))}
          firmwareOf={async (modelId) =>
            (options.data?.find((m) => m.model_id === modelId)?.firmware ?? []).map((f) => ({
              value: f.id,
              label: f.is_current ? t('campaigns.currentImage', { version: f.version }) : f.version,
            }))
          }
          departments={depts.data ?? []}
          timeZoneNote={t('campaigns.tzOrg', { zone: zone ?? t('campaigns.tzInstance') })}
          submit={async (body) =>
            (await unwrap(api.POST('/api/v1/orgs/{orgId}/campaigns', { params: { path: { orgId } }, body }))).campaign
          }
          onCreated={async (c) => {
            message.success(t('campaigns.created'));
            await qc.invalidateQueries({ queryKey: listKey });
            setCreating(false);
            navigate(c.id);
          }}
          onClose={() => setCreating(false)}
        />
      )}
    </Space>
  );
}

/** The organisation's time zone, where maintenance windows are read (null = the instance's); set on the settings page. */
function TimeZone({
  orgId,
  zone,
  loading,
  canChange,
}: {
  orgId: string;
  zone: string | null;
  loading: boolean;
  canChange: boolean;
}) {
  const { t } = useTranslation('campaigns');
  return (
    <Card size="small" loading={loading}>
      <Space wrap align="center">
        <Typography.Text strong>{t('campaigns.tzLabel')}</Typography.Text>
        <Typography.Text data-testid="campaign-tz">{zone ?? t('campaigns.tzInstance')}</Typography.Text>
        <Typography.Text type="secondary">{t('campaigns.tzHelp')}</Typography.Text>
        {canChange && (
          <Link to={`/orgs/${orgId}/settings`} data-testid="campaign-tz-settings">
            {t('campaigns.tzChange')}
          </Link>
        )}
      </Space>
    </Card>
  );
}
