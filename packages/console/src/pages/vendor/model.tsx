import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Descriptions, Form, Input, Radio, Space, Tag, Typography } from 'antd';
import { useEffect } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { ShownOnce } from '../../components/shown-once.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { bodyOf, formValuesOf, ModelFields, type ModelFormValues } from './model-form.js';

interface BindSettings {
  typed_sn_mode: 'verif_code' | 'sn_only';
  app_key: string | null;
  app_name: string | null;
}

/** /vendors/:vendorId/models/:modelId — edit a model, its bind settings, its secrets; archive it. */
export function Component() {
  const { vendorId = '', modelId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message, modal } = App.useApp();
  const qc = useQueryClient();
  const [form] = Form.useForm<ModelFormValues>();
  const [bindForm] = Form.useForm<BindSettings>();
  const key = ['vendors', vendorId, 'models', modelId];
  const model = useQuery({
    queryKey: key,
    queryFn: async () => (await unwrap(api.GET('/api/v1/models/{modelId}', { params: { path: { modelId } } }))).model,
  });
  const bind = useQuery({
    queryKey: [...key, 'bind-settings'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/models/{modelId}/bind-settings', { params: { path: { modelId } } }),
      ) as unknown as Promise<BindSettings>,
  });
  const m = model.data;
  useEffect(() => {
    if (m) form.setFieldsValue(formValuesOf(m));
  }, [m, form]);
  useEffect(() => {
    if (bind.data) bindForm.setFieldsValue(bind.data);
  }, [bind.data, bindForm]);
  const refresh = () => void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'models'] });

  const save = useMutation({
    mutationFn: (v: ModelFormValues) =>
      unwrap(api.PATCH('/api/v1/models/{modelId}', { params: { path: { modelId } }, body: bodyOf(v, false) })),
    onSuccess: () => {
      message.success(t('models.saved'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const saveBind = useMutation({
    mutationFn: (v: BindSettings) =>
      unwrap(
        api.PUT('/api/v1/models/{modelId}/bind-settings', {
          params: { path: { modelId } },
          body: { typed_sn_mode: v.typed_sn_mode, app_key: v.app_key?.trim() || null, app_name: v.app_name?.trim() || null },
        }),
      ),
    onSuccess: () => {
      message.success(t('models.saved'));
      void qc.invalidateQueries({ queryKey: [...key, 'bind-settings'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rotate = useMutation({
    mutationFn: () =>
      unwrap(api.POST('/api/v1/models/{modelId}/secret', { params: { path: { modelId } } })) as unknown as Promise<{
        model_secret: string;
      }>,
    onError: (e) => message.error(c.err(e)),
  });
  const seed = useMutation({
    mutationFn: () =>
      unwrap(api.GET('/api/v1/models/{modelId}/seed-secret-no', { params: { path: { modelId } } })) as unknown as Promise<{
        seed_secret_no: string | null;
      }>,
    onError: (e) => message.error(c.err(e)),
  });
  const archive = useMutation({
    mutationFn: (archived: boolean) =>
      unwrap(api.PUT('/api/v1/models/{modelId}/archived', { params: { path: { modelId } }, body: { archived } })),
    onSuccess: (r) => {
      message.success(t(r.model.archived_at ? 'models.archivedDone' : 'models.restoredDone'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });

  if (model.error) return <Alert type="error" showIcon message={c.err(model.error)} />;
  if (!m) return <Card loading />;
  const typedMode = bind.data?.typed_sn_mode;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={
          <Space wrap>
            <Link to={`/vendors/${vendorId}/models`}>{t('models.title')}</Link>/<span data-testid="model-title">{m.name}</span>
            {m.archived_at && <Tag data-testid="model-archived">{t('models.archived')}</Tag>}
          </Space>
        }
        extra={
          m.archived_at ? (
            <Button onClick={() => archive.mutate(false)} loading={archive.isPending} data-testid="model-restore">
              {t('models.restore')}
            </Button>
          ) : (
            <Button
              danger
              onClick={() =>
                modal.confirm({
                  title: t('models.archiveConfirm', { name: m.name }),
                  content: t('models.archiveHint'),
                  okText: t('models.archive'),
                  okButtonProps: withTestId('model-archive-ok', { danger: true }),
                  onOk: () => archive.mutateAsync(true),
                })
              }
              data-testid="model-archive"
            >
              {t('models.archive')}
            </Button>
          )
        }
      >
        <Descriptions size="small" column={{ xs: 1, md: 2 }}>
          <Descriptions.Item label={t('models.id')}>
            <Typography.Text code copyable>
              {m.model_id}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('models.productKey')}>
            <Typography.Text code copyable>
              {m.product_key}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('models.sharedSeed')}>{m.shared_seed ? t('models.yes') : t('models.no')}</Descriptions.Item>
          <Descriptions.Item label={t('models.created')}>{c.date(m.created_at)}</Descriptions.Item>
        </Descriptions>
        <Link to={`/vendors/${vendorId}/devices?model_id=${encodeURIComponent(m.model_id)}`} data-testid="model-devices">
          {t('models.devicesOf')}
        </Link>
      </Card>

      <Card title={t('models.settings')}>
        <Form form={form} layout="vertical" onFinish={(v) => save.mutate(v)} style={{ maxWidth: 640 }}>
          <ModelFields creating={false} productKey={m.product_key} />
          <Button type="primary" htmlType="submit" loading={save.isPending} data-testid="model-save">
            {t('models.save')}
          </Button>
        </Form>
      </Card>

      <Card title={t('models.bindSettings')}>
        <Form form={bindForm} layout="vertical" onFinish={(v) => saveBind.mutate(v)} style={{ maxWidth: 640 }}>
          <Form.Item name="typed_sn_mode" label={t('models.typedSn')}>
            <Radio.Group data-testid="model-typed-sn">
              <Radio value="verif_code">{t('models.typedSn.verif_code')}</Radio>
              <Radio value="sn_only">{t('models.typedSn.sn_only')}</Radio>
            </Radio.Group>
          </Form.Item>
          {typedMode === 'sn_only' && (
            <Alert type="warning" showIcon message={t('models.snOnlyWarning')} style={{ marginBottom: 12 }} />
          )}
          <Form.Item name="app_key" label={t('models.appKey')} extra={t('models.appKeyHint')}>
            <Input maxLength={64} allowClear data-testid="model-app-key" />
          </Form.Item>
          <Form.Item name="app_name" label={t('models.appName')}>
            <Input maxLength={128} allowClear />
          </Form.Item>
          <Button type="primary" htmlType="submit" loading={saveBind.isPending} data-testid="bind-save">
            {t('models.save')}
          </Button>
        </Form>
      </Card>

      <Card title={t('models.secrets')}>
        <Typography.Paragraph type="secondary">{t('models.secretsHint')}</Typography.Paragraph>
        {rotate.data && (
          <ShownOnce
            label={t('models.newSecret')}
            value={rotate.data.model_secret}
            warning={t('models.shownOnce')}
            testId="model-secret"
          />
        )}
        {seed.data?.seed_secret_no && (
          <ShownOnce
            label={t('models.seed')}
            value={seed.data.seed_secret_no}
            warning={t('models.seedAudited')}
            testId="model-seed"
          />
        )}
        <Space wrap>
          <Button
            onClick={() =>
              modal.confirm({
                title: t('models.rotateConfirm'),
                content: t('models.rotateHint'),
                okText: t('models.rotate'),
                okButtonProps: withTestId('model-rotate-ok', { danger: true }),
                onOk: () => rotate.mutateAsync(),
              })
            }
            data-testid="model-rotate"
          >
            {t('models.rotate')}
          </Button>
          {m.shared_seed && (
            <Button onClick={() => seed.mutate()} loading={seed.isPending} disabled={!!seed.data} data-testid="model-show-seed">
              {t('models.showSeed')}
            </Button>
          )}
        </Space>
      </Card>
    </Space>
  );
}
