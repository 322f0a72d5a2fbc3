import { useQuery, useQueryClient } from '@tanstack/react-query';
import { App, Button, Space, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { CampaignForm } from '../../components/campaigns/campaign-form.js';
import { CampaignTable } from '../../components/campaigns/campaign-list.js';
import { withTestId } from '../../components/test-id.js';
import { useModels } from './models.js';

/**
 * /vendors/:vendorId/campaigns (issue 14; docs/ota.md): the vendor's staged firmware campaigns (its
 * organisations' ones on its models too) with their progress, and starting one — by version,
 * owner organisation and its department, online state or SN list. The pieces are
 * components/campaigns/, shared with the organisation's page; the detail page is campaign.tsx.
 */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('campaigns');
  const { message } = App.useApp();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const listKey = ['vendors', vendorId, 'campaigns'];
  const list = useQuery({
    queryKey: listKey,
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/vendors/{vendorId}/campaigns', { params: { path: { vendorId } } }))).campaigns,
    refetchInterval: 5_000,
  });
  const models = useModels(vendorId);
  const [creating, setCreating] = useState(false);
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('campaigns.title')}
        </Typography.Title>
        <Button type="primary" onClick={() => setCreating(true)} {...withTestId('campaign-new')}>
          {t('campaigns.new')}
        </Button>
      </Space>
      <Typography.Paragraph type="secondary">{t('campaigns.intro')}</Typography.Paragraph>
      <CampaignTable campaigns={list.data} loading={list.isLoading} error={list.error} showOwner />
      {creating && (
        <CampaignForm
          models={(models.data ?? []).map((m) => ({ value: m.model_id, label: m.name }))}
          firmwareOf={async (modelId) =>
            ((await unwrap(api.GET('/api/v1/models/{modelId}/firmware', { params: { path: { modelId } } }))).firmware ?? []).map(
              (f) => ({ value: f.id!, label: f.version ?? '' }),
            )
          }
          versionsOf={async (modelId) =>
            (await unwrap(api.GET('/api/v1/models/{modelId}/firmware/fleet', { params: { path: { modelId } } }))).versions
              .filter((v) => v.version !== null)
              .map((v) => ({ value: v.version!, label: `${v.version} (${v.devices})` }))
          }
          owners={{
            orgsOf: async (modelId) =>
              (
                await unwrap(
                  api.GET('/api/v1/vendors/{vendorId}/campaign-orgs', {
                    params: { path: { vendorId }, query: { model_id: modelId } },
                  }),
                )
              ).organisations.map((o) => ({
                value: o.id,
                label: t('campaigns.ownerOption', { name: o.name, devices: o.devices }),
              })),
            departmentsOf: async (orgId) =>
              (
                await unwrap(
                  api.GET('/api/v1/vendors/{vendorId}/campaign-orgs/{orgId}/departments', {
                    params: { path: { vendorId, orgId } },
                  }),
                )
              ).departments,
          }}
          timeZoneNote={t('campaigns.tzVendor')}
          submit={async (body) =>
            (await unwrap(api.POST('/api/v1/vendors/{vendorId}/campaigns', { params: { path: { vendorId } }, body }))).campaign
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
