import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  Button,
  Card,
  Checkbox,
  Descriptions,
  Form,
  Input,
  InputNumber,
  Modal,
  Progress,
  Radio,
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
import type { paths } from '../../api/schema.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { vendorRole } from '../../nav.js';
import { useMe } from '../../session.js';

type Batch = paths['/api/v1/batches/{batchId}']['get']['responses'][200]['content']['application/json']['batch'];
type Model = paths['/api/v1/vendors/{vendorId}/models']['get']['responses'][200]['content']['application/json']['models'][number];

const STATE_COLOR = { generating: 'processing', ready: 'success', failed: 'error' } as const;
/** Polling while a batch is being written: the progress survives a reload because it is the server's. */
const POLL_MS = 700;

function useModels(vendorId: string) {
  return useQuery({
    queryKey: ['vendors', vendorId, 'models'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/vendors/{vendorId}/models', { params: { path: { vendorId } } }))).models,
  });
}

function percent(b: Batch): number {
  return b.count ? Math.floor((100 * b.counts.generated) / b.count) : 0;
}

function usePatternText() {
  const { t } = useTranslation('vendor');
  return (b: Batch) => {
    const p = b.pattern;
    const prefix = p.prefix || '∅';
    const body =
      p.kind === 'counter'
        ? t('batches.patternCounter', { prefix, n: p.width ?? 6 })
        : t('batches.patternRandom', { prefix, n: p.length ?? 10 });
    return p.check_char ? `${body}${t('batches.patternCheck')}` : body;
  };
}

function StateTag({ b }: { b: Batch }) {
  const { t } = useTranslation('vendor');
  return (
    <Tag color={STATE_COLOR[b.state]} data-testid="batch-state">
      {t(`batches.state.${b.state}`)}
    </Tag>
  );
}

/** /vendors/:vendorId/batches and /vendors/:vendorId/batches/:batchId — label batches (issue 13, item 4). */
export function Component() {
  const { batchId } = useParams();
  return batchId ? <BatchDetail batchId={batchId} /> : <BatchList />;
}

function BatchList() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const [creating, setCreating] = useState(false);
  const models = useModels(vendorId);
  const batches = useQuery({
    queryKey: ['vendors', vendorId, 'batches'],
    queryFn: () =>
      unwrap(api.GET('/api/v1/vendors/{vendorId}/batches', { params: { path: { vendorId }, query: { limit: 200 } } })),
    refetchInterval: (q) => (q.state.data?.batches.some((b) => b.state === 'generating') ? POLL_MS : false),
  });
  const modelName = (id: string) => models.data?.find((m) => m.model_id === id)?.name ?? id;
  const patternText = usePatternText();
  return (
    <Card
      title={t('batches.title')}
      extra={
        <Button type="primary" onClick={() => setCreating(true)} data-testid="batch-new">
          {t('batches.new')}
        </Button>
      }
    >
      <Typography.Paragraph type="secondary">{t('batches.hint')}</Typography.Paragraph>
      {batches.error && <Alert type="error" showIcon message={c.err(batches.error)} />}
      <Table<Batch>
        rowKey="id"
        size="small"
        loading={batches.isLoading}
        dataSource={batches.data?.batches}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('batches.none') }}
        data-testid="batches-table"
        columns={[
          {
            title: t('batches.id'),
            dataIndex: 'id',
            render: (id: string) => (
              <Link to={id} data-testid="batch-link">
                {id}
              </Link>
            ),
          },
          { title: t('batches.model'), dataIndex: 'model_id', render: (id: string) => modelName(id) },
          { title: t('batches.count'), dataIndex: 'count' },
          {
            title: t('batches.sns'),
            key: 'sns',
            render: (_, b) => (b.first_sn ? `${b.first_sn} … ${b.last_sn}` : patternText(b)),
          },
          {
            title: t('batches.stateCol'),
            key: 'state',
            render: (_, b) =>
              b.state === 'generating' ? (
                <Progress percent={percent(b)} size="small" style={{ minWidth: 120 }} />
              ) : (
                <StateTag b={b} />
              ),
          },
          { title: t('batches.downloads'), key: 'dl', render: (_, b) => b.counts.downloaded },
          { title: t('batches.created'), dataIndex: 'created_at', render: (v: string) => c.date(v) },
        ]}
      />
      {creating && <CreateBatch vendorId={vendorId} models={models.data ?? []} onClose={() => setCreating(false)} />}
    </Card>
  );
}

interface CreateForm {
  model_id: string;
  kind: 'counter' | 'random';
  prefix: string;
  width: number;
  length: number;
  check_char: boolean;
  count: number;
}

function CreateBatch({ vendorId, models, onClose }: { vendorId: string; models: Model[]; onClose: () => void }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [form] = Form.useForm<CreateForm>();
  const kind = Form.useWatch('kind', form) ?? 'counter';
  const modelId = Form.useWatch('model_id', form);
  const active = models.filter((m) => !m.archived_at);
  const model = active.find((m) => m.model_id === modelId);
  const create = useMutation({
    mutationFn: (v: CreateForm) =>
      unwrap(
        api.POST('/api/v1/models/{modelId}/batches', {
          params: { path: { modelId: v.model_id } },
          body: {
            count: v.count,
            background: true,
            pattern:
              v.kind === 'counter'
                ? { kind: 'counter', prefix: v.prefix ?? '', width: v.width, check_char: v.check_char }
                : { kind: 'random', prefix: v.prefix ?? '', length: v.length, check_char: v.check_char },
          },
        }),
      ),
    onSuccess: (r) => {
      void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'batches'] });
      onClose();
      navigate(`/vendors/${vendorId}/batches/${r.batch.id}`);
    },
  });
  return (
    <Modal
      open
      title={t('batches.new')}
      okText={t('batches.create')}
      onOk={() => form.submit()}
      onCancel={onClose}
      confirmLoading={create.isPending}
      okButtonProps={withTestId('batch-create')}
    >
      {create.error && <Alert type="error" showIcon message={c.err(create.error)} style={{ marginBottom: 12 }} />}
      <Form<CreateForm>
        form={form}
        layout="vertical"
        initialValues={{ kind: 'counter', prefix: '', width: 6, length: 10, check_char: true, count: 100 }}
        onFinish={(v) => create.mutate(v)}
      >
        <Form.Item name="model_id" label={t('batches.model')} rules={[{ required: true, message: t('batches.pickModel') }]}>
          <Select
            data-testid="batch-model"
            options={active.map((m) => ({ value: m.model_id, label: `${m.name} (${m.product_key})` }))}
          />
        </Form.Item>
        {model && (
          <Typography.Paragraph type="secondary" data-testid="batch-format">
            {t('batches.labelFormat', { format: t(`batches.format.${model.label_format}`) })}
          </Typography.Paragraph>
        )}
        <Form.Item name="kind" label={t('batches.pattern')}>
          <Radio.Group
            options={[
              { value: 'counter', label: t('batches.counter') },
              { value: 'random', label: t('batches.random') },
            ]}
          />
        </Form.Item>
        <Space wrap>
          <Form.Item
            name="prefix"
            label={t('batches.prefix')}
            rules={[{ pattern: /^[0-9A-Za-z]{0,64}$/, message: t('batches.prefixRule') }]}
          >
            <Input style={{ width: 160 }} data-testid="batch-prefix" />
          </Form.Item>
          {kind === 'counter' ? (
            <Form.Item name="width" label={t('batches.width')}>
              <InputNumber min={1} max={20} />
            </Form.Item>
          ) : (
            <Form.Item name="length" label={t('batches.length')}>
              <InputNumber min={6} max={40} />
            </Form.Item>
          )}
          <Form.Item name="count" label={t('batches.count')} rules={[{ required: true }]}>
            <InputNumber min={1} max={100000} style={{ width: 140 }} data-testid="batch-count" />
          </Form.Item>
        </Space>
        {kind === 'counter' && <Alert type="info" showIcon message={t('batches.counterWarning')} style={{ marginBottom: 12 }} />}
        <Form.Item name="check_char" valuePropName="checked" extra={t('batches.checkCharHint')}>
          <Checkbox>{t('batches.checkChar')}</Checkbox>
        </Form.Item>
      </Form>
    </Modal>
  );
}

function BatchDetail({ batchId }: { batchId: string }) {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const me = useMe();
  const role = vendorRole(me, vendorId);
  const models = useModels(vendorId);
  const batch = useQuery({
    queryKey: ['batches', batchId],
    queryFn: async () => (await unwrap(api.GET('/api/v1/batches/{batchId}', { params: { path: { batchId } } }))).batch,
    refetchInterval: (q) => (q.state.data?.state === 'generating' ? POLL_MS : false),
  });
  const b = batch.data;
  const model = models.data?.find((m) => m.model_id === b?.model_id);
  const patternText = usePatternText();
  const base = `/api/v1/batches/${encodeURIComponent(batchId)}`;
  const downloads: Array<{ key: string; href: string; testId: string }> = [
    { key: 'zip', href: `${base}/download`, testId: 'dl-zip' },
    // The two label PDFs on their own, to print straight away (the same files as in the zip).
    { key: 'pdfA4', href: `${base}/labels-a4.pdf`, testId: 'dl-pdf-a4' },
    { key: 'pdfRoll', href: `${base}/labels-roll.pdf`, testId: 'dl-pdf-roll' },
    // The manifest as one csv: the fleet's static-QR sheet of this batch (the same rows, plus model and QR URL).
    {
      key: 'manifestCsv',
      href: `/api/v1/vendors/${encodeURIComponent(vendorId)}/devices/qr-sheet?batch_id=${encodeURIComponent(batchId)}&format=csv`,
      testId: 'dl-manifest-csv',
    },
    { key: 'manifest', href: `${base}/download?include=manifest`, testId: 'dl-manifest' },
    { key: 'images', href: `${base}/download?include=png,svg`, testId: 'dl-images' },
  ];
  // A download counts once it completed: look again a little later for the new count.
  const recount = () => setTimeout(() => void batch.refetch(), 3000);
  // The flashing file holds every device's SecretNo: the line's roles only (issue 13, item 1).
  const mayReadSecrets = role === 'vendor_admin' || role === 'production';
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Link to={`/vendors/${vendorId}/batches`}>← {t('batches.back')}</Link>
      {batch.error && <Alert type="error" showIcon message={c.err(batch.error)} />}
      {b && (
        <Card title={t('batches.detailTitle', { id: b.id })} extra={<StateTag b={b} />} data-testid="batch-detail">
          {b.state === 'generating' && (
            <div data-testid="batch-progress">
              <Typography.Text>{t('batches.generating', { done: b.counts.generated, count: b.count })}</Typography.Text>
              <Progress percent={percent(b)} status="active" />
              <Typography.Paragraph type="secondary">{t('batches.generatingHint')}</Typography.Paragraph>
            </div>
          )}
          {b.state === 'failed' && <Alert type="error" showIcon message={t('batches.failed')} description={b.error} />}
          <Descriptions size="small" column={{ xs: 1, md: 2 }} style={{ marginTop: 12 }}>
            <Descriptions.Item label={t('batches.model')}>
              {model ? `${model.name} (${model.product_key})` : b.model_id}
            </Descriptions.Item>
            <Descriptions.Item label={t('batches.count')}>{b.count}</Descriptions.Item>
            <Descriptions.Item label={t('batches.pattern')}>{patternText(b)}</Descriptions.Item>
            <Descriptions.Item label={t('batches.sns')}>{b.first_sn ? `${b.first_sn} … ${b.last_sn}` : '—'}</Descriptions.Item>
            {model && (
              <Descriptions.Item label={t('batches.labelFormatCol')}>
                {t(`batches.format.${model.label_format}`)}
              </Descriptions.Item>
            )}
            <Descriptions.Item label={t('batches.counts')}>
              {t('batches.countsText', {
                downloaded: b.counts.downloaded,
                paired: b.counts.paired,
                activated: b.counts.activated,
                bound: b.counts.bound,
              })}
            </Descriptions.Item>
            <Descriptions.Item label={t('batches.created')}>{c.date(b.created_at)}</Descriptions.Item>
            <Descriptions.Item label={t('batches.finished')}>{c.date(b.finished_at)}</Descriptions.Item>
          </Descriptions>
        </Card>
      )}
      {b?.state === 'ready' && (
        <Card title={t('batches.preview')}>
          <Typography.Paragraph type="secondary">{t('batches.previewHint')}</Typography.Paragraph>
          {/* 50 × 30 mm: the browser's mm is the printed size at the screen's nominal resolution. */}
          <img
            src={`${base}/preview.svg`}
            alt={t('batches.preview')}
            style={{ width: '50mm', height: '30mm', border: '1px solid #d9d9d9', background: '#fff' }}
            data-testid="batch-preview"
          />
        </Card>
      )}
      {b?.state === 'ready' && (
        <Card title={t('batches.downloadsTitle')}>
          <Space wrap>
            {downloads.map((d) => (
              <Button key={d.key} href={d.href} download data-testid={d.testId} onClick={recount}>
                {t(`batches.dl.${d.key}`)}
              </Button>
            ))}
            {mayReadSecrets && (
              <Button danger href={`${base}/secrets.csv`} download data-testid="dl-secrets">
                {t('batches.dl.secrets')}
              </Button>
            )}
          </Space>
          <Typography.Paragraph type="secondary" style={{ marginTop: 12 }}>
            {t('batches.downloadsHint')}
          </Typography.Paragraph>
          {mayReadSecrets && <Alert type="warning" showIcon message={t('batches.secretsHint')} />}
        </Card>
      )}
    </Space>
  );
}
