import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { App, Button, Card, Collapse, Form, Modal, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { ShownOnce } from '../../components/shown-once.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { vendorRole } from '../../nav.js';
import { useMe } from '../../session.js';
import { byCode, CATEGORY_OPTIONS, CLASS_OPTIONS, codeLabel } from './model-codes.js';
import { bodyOf, type Model, ModelFields, type ModelFormValues, NEW_MODEL } from './model-form.js';

export function useModels(vendorId: string) {
  return useQuery({
    queryKey: ['vendors', vendorId, 'models'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/vendors/{vendorId}/models', { params: { path: { vendorId } } }))).models,
  });
}

/** /vendors/:vendorId/models — the vendor's models (archived ones apart) and creating one. */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const models = useModels(vendorId);
  // Production workers read models (for batches and the line); engineers and admins make them.
  const mayEdit = vendorRole(useMe(), vendorId) !== 'production';
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm<ModelFormValues>();
  const create = useMutation({
    mutationFn: (v: ModelFormValues) =>
      unwrap(api.POST('/api/v1/vendors/{vendorId}/models', { params: { path: { vendorId } }, body: bodyOf(v, true) })),
    onSuccess: () => {
      setCreating(false);
      void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'models'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const all = models.data ?? [];
  const active = all.filter((m) => !m.archived_at);
  const archived = all.filter((m) => m.archived_at);
  const columns = [
    {
      title: t('models.name'),
      dataIndex: 'name',
      render: (name: string, m: Model) => (
        <Link to={m.model_id} data-testid="model-link">
          {name}
        </Link>
      ),
    },
    {
      title: t('models.productKey'),
      dataIndex: 'product_key',
      render: (pk: string) => <Typography.Text code>{pk}</Typography.Text>,
    },
    {
      title: t('models.category'),
      responsive: ['md' as const],
      render: (_: unknown, m: Model) => codeLabel(byCode(CATEGORY_OPTIONS, m.category_code), c.lang),
    },
    {
      title: t('models.class'),
      responsive: ['lg' as const],
      render: (_: unknown, m: Model) => codeLabel(byCode(CLASS_OPTIONS, m.class_code), c.lang),
    },
    {
      title: t('models.labelFormat'),
      responsive: ['md' as const],
      render: (_: unknown, m: Model) => <Tag>{t(`models.format.${m.label_format}`)}</Tag>,
    },
    { title: t('models.created'), dataIndex: 'created_at', responsive: ['lg' as const], render: (d: string) => c.date(d) },
  ];
  const shown = create.data;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={t('models.title')}
        extra={
          mayEdit && (
            <Button
              type="primary"
              onClick={() => {
                form.setFieldsValue(NEW_MODEL);
                create.reset();
                setCreating(true);
              }}
              data-testid="model-new"
            >
              {t('models.new')}
            </Button>
          )
        }
      >
        {shown && (
          <div data-testid="model-created">
            <Typography.Paragraph strong>{t('models.createdOnce', { name: shown.model.name })}</Typography.Paragraph>
            <ShownOnce
              label={t('models.secret')}
              value={shown.model_secret}
              warning={t('models.shownOnce')}
              testId="model-secret"
            />
            {shown.seed_secret_no && (
              <ShownOnce
                label={t('models.seed')}
                value={shown.seed_secret_no}
                warning={t('models.shownOnce')}
                testId="model-seed"
              />
            )}
            <Space style={{ marginBottom: 12 }}>
              <Link to={shown.model.model_id}>{t('models.open')}</Link>
              <Button size="small" onClick={() => create.reset()} data-testid="model-secret-done">
                {t('models.secretSaved')}
              </Button>
            </Space>
          </div>
        )}
        <Table
          rowKey="model_id"
          size="middle"
          loading={models.isLoading}
          dataSource={active}
          columns={columns}
          pagination={false}
          locale={{ emptyText: t('models.none') }}
          data-testid="models-table"
          scroll={{ x: true }}
        />
      </Card>
      {archived.length > 0 && (
        <Collapse
          items={[
            {
              key: 'archived',
              label: t('models.archivedList', { n: archived.length }),
              children: (
                <Table
                  rowKey="model_id"
                  size="small"
                  dataSource={archived}
                  columns={columns}
                  pagination={false}
                  scroll={{ x: true }}
                />
              ),
            },
          ]}
          data-testid="models-archived"
        />
      )}
      <Modal
        open={creating}
        title={t('models.new')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('models.create')}
        okButtonProps={withTestId('model-create', { loading: create.isPending })}
        destroyOnHidden
        width={640}
      >
        <Form form={form} layout="vertical" initialValues={NEW_MODEL} onFinish={(v) => create.mutate(v)} preserve={false}>
          <ModelFields creating />
        </Form>
      </Modal>
    </Space>
  );
}
