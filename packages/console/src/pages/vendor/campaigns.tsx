import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Checkbox,
  Form,
  Input,
  InputNumber,
  Modal,
  Progress,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { withTestId } from '../../components/test-id.js';
import { errorText, formatDate } from '../../i18n/index.js';
import { useModels } from './models.js';

/**
 * /vendors/:vendorId/campaigns (issue 14; docs/ota.md): the vendor's staged firmware campaigns with their
 * progress, and starting one (target, image, stages, abort thresholds). The detail page is campaign.tsx.
 */
type Campaign = NonNullable<NonNullable<ReturnType<typeof useCampaigns>['data']>>[number];

export const STATUS_COLOR: Record<string, string> = {
  running: 'processing',
  paused: 'warning',
  cancelled: 'default',
  completed: 'success',
};

function useCampaigns(vendorId: string) {
  return useQuery({
    queryKey: ['vendors', vendorId, 'campaigns'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/vendors/{vendorId}/campaigns', { params: { path: { vendorId } } }))).campaigns,
    refetchInterval: 5_000,
  });
}

export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('campaigns');
  const list = useCampaigns(vendorId);
  const [creating, setCreating] = useState(false);
  const ended = (c: Campaign) =>
    c.counts.succeeded + c.counts.failed + c.counts.timed_out + c.counts.skipped + c.counts.cancelled;
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
      {list.error && <Alert type="error" showIcon message={errorText(list.error)} />}
      <Table<Campaign>
        rowKey="id"
        loading={list.isLoading}
        dataSource={list.data ?? []}
        pagination={false}
        scroll={{ x: 720 }}
        locale={{ emptyText: t('campaigns.empty') }}
        data-testid="campaign-list"
        columns={[
          {
            title: t('campaigns.col.name'),
            dataIndex: 'name',
            render: (v: string, c) => <Link to={c.id}>{v}</Link>,
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
      {creating && <CreateCampaign vendorId={vendorId} onClose={() => setCreating(false)} />}
    </Space>
  );
}

type CreateBody = Parameters<typeof createCampaign>[1];

async function createCampaign(
  vendorId: string,
  body: {
    name: string;
    model_id: string;
    firmware_id: string;
    target?: { from_versions?: Array<string | null>; online_only?: boolean; sns?: string[] };
    stages: { canary_count?: number; rate_per_minute: number; factor: number; stage_size: number; max_rate_per_minute?: number };
    thresholds: {
      min_executions: number;
      failure_pct: number | null;
      timeout_pct: number | null;
      did_not_come_back_pct: number | null;
    };
    offline?: 'skip' | 'queue';
    window_sec?: number;
  },
) {
  return (await unwrap(api.POST('/api/v1/vendors/{vendorId}/campaigns', { params: { path: { vendorId } }, body }))).campaign;
}

interface FormValues {
  name: string;
  model_id: string;
  firmware_id: string;
  from_versions?: string[];
  online_only?: boolean;
  sns?: string;
  canary_count: number;
  rate_per_minute: number;
  factor: number;
  stage_size: number;
  min_executions: number;
  failure_pct?: number | null;
  timeout_pct?: number | null;
  did_not_come_back_pct?: number | null;
  offline: 'skip' | 'queue';
  window_min: number;
}

function CreateCampaign({ vendorId, onClose }: { vendorId: string; onClose(): void }) {
  const { t } = useTranslation('campaigns');
  const { message } = App.useApp();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [form] = Form.useForm<FormValues>();
  const models = useModels(vendorId);
  const modelId = Form.useWatch('model_id', form);
  const firmware = useQuery({
    queryKey: ['models', modelId, 'firmware'],
    enabled: !!modelId,
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/models/{modelId}/firmware', { params: { path: { modelId: modelId! } } }))).firmware,
  });
  const fleet = useQuery({
    queryKey: ['models', modelId, 'firmware', 'fleet'],
    enabled: !!modelId,
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/models/{modelId}/firmware/fleet', { params: { path: { modelId: modelId! } } }))).versions,
  });
  const create = useMutation({
    mutationFn: (v: FormValues) => {
      const sns = (v.sns ?? '')
        .split(/[\s,;]+/)
        .map((s) => s.trim())
        .filter(Boolean);
      const body: CreateBody = {
        name: v.name,
        model_id: v.model_id,
        firmware_id: v.firmware_id,
        target: {
          ...(v.from_versions?.length ? { from_versions: v.from_versions } : {}),
          ...(v.online_only ? { online_only: true } : {}),
          ...(sns.length ? { sns } : {}),
        },
        stages: { canary_count: v.canary_count, rate_per_minute: v.rate_per_minute, factor: v.factor, stage_size: v.stage_size },
        thresholds: {
          min_executions: v.min_executions,
          failure_pct: v.failure_pct ?? null,
          timeout_pct: v.timeout_pct ?? null,
          did_not_come_back_pct: v.did_not_come_back_pct ?? null,
        },
        offline: v.offline,
        window_sec: Math.round(v.window_min * 60),
      };
      return createCampaign(vendorId, body);
    },
    onSuccess: async (c) => {
      message.success(t('campaigns.created'));
      await qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'campaigns'] });
      onClose();
      navigate(c.id);
    },
  });
  return (
    <Modal
      open
      title={t('campaigns.new')}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t('campaigns.start')}
      confirmLoading={create.isPending}
      okButtonProps={withTestId('campaign-start')}
      width={640}
      destroyOnHidden
    >
      {create.error && <Alert type="error" showIcon message={errorText(create.error)} style={{ marginBottom: 12 }} />}
      <Form<FormValues>
        form={form}
        layout="vertical"
        onFinish={(v) => create.mutate(v)}
        initialValues={{
          canary_count: 10,
          rate_per_minute: 100,
          factor: 2,
          stage_size: 500,
          min_executions: 50,
          failure_pct: 10,
          timeout_pct: 20,
          did_not_come_back_pct: 5,
          offline: 'queue',
          window_min: 30,
        }}
      >
        <Form.Item name="name" label={t('campaigns.f.name')} rules={[{ required: true, max: 120 }]}>
          <Input {...withTestId('campaign-name')} />
        </Form.Item>
        <Space wrap align="start">
          <Form.Item name="model_id" label={t('campaigns.f.model')} rules={[{ required: true }]}>
            <Select
              style={{ minWidth: 220 }}
              data-testid="campaign-model"
              options={(models.data ?? []).map((m) => ({ value: m.model_id, label: m.name }))}
              onChange={() => form.setFieldsValue({ firmware_id: undefined, from_versions: [] })}
            />
          </Form.Item>
          <Form.Item name="firmware_id" label={t('campaigns.f.image')} rules={[{ required: true }]}>
            <Select
              style={{ minWidth: 180 }}
              data-testid="campaign-image"
              options={(firmware.data ?? []).map((f) => ({ value: f.id!, label: f.version }))}
            />
          </Form.Item>
        </Space>
        <Form.Item name="from_versions" label={t('campaigns.f.fromVersions')} extra={t('campaigns.f.fromVersionsHelp')}>
          <Select
            mode="multiple"
            data-testid="campaign-from"
            options={(fleet.data ?? [])
              .filter((v) => v.version !== null)
              .map((v) => ({ value: v.version!, label: `${v.version} (${v.devices})` }))}
          />
        </Form.Item>
        <Form.Item name="online_only" valuePropName="checked">
          <Checkbox>{t('campaigns.f.onlineOnly')}</Checkbox>
        </Form.Item>
        <Form.Item name="sns" label={t('campaigns.f.sns')} extra={t('campaigns.f.snsHelp')}>
          <Input.TextArea rows={2} />
        </Form.Item>
        <Typography.Text strong>{t('campaigns.f.stages')}</Typography.Text>
        <Space wrap align="start">
          <Form.Item name="canary_count" label={t('campaigns.f.canary')} rules={[{ required: true }]}>
            <InputNumber min={0} />
          </Form.Item>
          <Form.Item name="rate_per_minute" label={t('campaigns.f.rate')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
          <Form.Item name="factor" label={t('campaigns.f.factor')} rules={[{ required: true }]}>
            <InputNumber min={1} max={10} step={0.5} />
          </Form.Item>
          <Form.Item name="stage_size" label={t('campaigns.f.stageSize')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
        </Space>
        <Typography.Text strong>{t('campaigns.f.thresholds')}</Typography.Text>
        <Space wrap align="start">
          <Form.Item name="min_executions" label={t('campaigns.f.minExecutions')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
          <Form.Item name="failure_pct" label={t('campaigns.f.failurePct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
          <Form.Item name="timeout_pct" label={t('campaigns.f.timeoutPct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
          <Form.Item name="did_not_come_back_pct" label={t('campaigns.f.dncPct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
        </Space>
        <Space wrap align="start">
          <Form.Item name="offline" label={t('campaigns.f.offline')}>
            <Select
              style={{ minWidth: 200 }}
              options={[
                { value: 'queue', label: t('campaigns.f.offlineQueue') },
                { value: 'skip', label: t('campaigns.f.offlineSkip') },
              ]}
            />
          </Form.Item>
          <Form.Item name="window_min" label={t('campaigns.f.window')} rules={[{ required: true }]}>
            <InputNumber min={1} max={10080} />
          </Form.Item>
        </Space>
      </Form>
    </Modal>
  );
}
