import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Card,
  Descriptions,
  Form,
  Input,
  Popconfirm,
  Select,
  Space,
  Switch,
  Table,
  Typography,
  Upload,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, csrfToken, unwrap } from '../../api/client.js';
import { TestEventButton, Webhooks } from '../../components/webhooks.js';
import { useI18n } from '../../i18n/index.js';
import { useModels } from './models.js';

/** CallbackSettingsView of the server (its responses carry no schema, so the generated types do not know it). */
interface Callback {
  url: string;
  token: string;
  encoding_aes_key: string;
  receive_id: string;
  verify_device: boolean;
  updated_at: number;
}
interface CallbackForm {
  url: string;
  token?: string;
  encoding_aes_key?: string;
  verify_device?: boolean;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A fresh Token (32 letters and digits) and EncodingAESKey (32 random bytes, base64 without the `=`: 43
 * characters). Made here because the server keeps the current pair when the fields are left empty.
 */
function newPair(): { token: string; encoding_aes_key: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(64));
  const token = Array.from(bytes.subarray(0, 32), (b) => ALNUM[b % ALNUM.length]).join('');
  const encoding_aes_key = btoa(String.fromCharCode(...bytes.subarray(32))).replace(/=+$/, '');
  return { token, encoding_aes_key };
}

/** A missing callback is an empty form, not an error. */
async function orNone(p: Promise<unknown>): Promise<Callback | null> {
  try {
    return ((await p) as { callback: Callback }).callback;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'CALLBACK_NOT_SET') return null;
    throw e;
  }
}

/**
 * /vendors/:vendorId/integrations — the provider general URL (verify_device), each model's callback URL
 * with its Token and EncodingAESKey, the vendor's webhooks and delivery log, and the inspection import.
 */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <CallbackCard scope={{ kind: 'vendor', id: vendorId }} vendorId={vendorId} />
      <ModelCallback vendorId={vendorId} />
      <Webhooks owner={{ kind: 'vendor', id: vendorId }} hint={t('integrations.webhooksHint')} />
      <Inspections />
    </Space>
  );
}

function ModelCallback({ vendorId }: { vendorId: string }) {
  const { t } = useTranslation('vendor');
  const models = useModels(vendorId);
  const [modelId, setModelId] = useState<string | undefined>();
  const chosen = modelId ?? models.data?.[0]?.model_id;
  return (
    <Card
      title={t('integrations.model.title')}
      extra={
        <Select
          value={chosen}
          onChange={setModelId}
          loading={models.isLoading}
          style={{ minWidth: 200 }}
          data-testid="callback-model"
          options={(models.data ?? []).map((m) => ({ value: m.model_id, label: m.name }))}
        />
      }
    >
      {chosen ? (
        <CallbackCard key={chosen} scope={{ kind: 'model', id: chosen }} vendorId={vendorId} bare />
      ) : (
        <Typography.Text type="secondary">{t('integrations.model.none')}</Typography.Text>
      )}
    </Card>
  );
}

/**
 * One callback endpoint: the vendor's provider URL or a model's URL; Token/EncodingAESKey generated when left
 * empty. Once saved, "Send test event" sends it a `bindery_test` event (its outcome also lands in the vendor's
 * delivery log).
 */
function CallbackCard({
  scope,
  vendorId,
  bare,
}: {
  scope: { kind: 'vendor' | 'model'; id: string };
  vendorId: string;
  bare?: boolean;
}) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [form] = Form.useForm<CallbackForm>();
  const vendor = scope.kind === 'vendor';
  const key = [vendor ? 'vendors' : 'models', scope.id, 'callback'];
  const cb = useQuery({
    queryKey: key,
    queryFn: () =>
      orNone(
        vendor
          ? unwrap(api.GET('/api/v1/vendors/{vendorId}/callback', { params: { path: { vendorId: scope.id } } }))
          : unwrap(api.GET('/api/v1/models/{modelId}/callback', { params: { path: { modelId: scope.id } } })),
      ),
  });
  const save = useMutation({
    mutationFn: (v: CallbackForm) => {
      // Empty Token/key: the server generates them for a new callback and keeps them for an existing one.
      const body = {
        url: v.url.trim(),
        ...(v.token ? { token: v.token } : {}),
        ...(v.encoding_aes_key ? { encoding_aes_key: v.encoding_aes_key } : {}),
      };
      return unwrap(
        vendor
          ? api.PUT('/api/v1/vendors/{vendorId}/callback', {
              params: { path: { vendorId: scope.id } },
              body: { ...body, verify_device: !!v.verify_device },
            })
          : api.PUT('/api/v1/models/{modelId}/callback', { params: { path: { modelId: scope.id } }, body }),
      );
    },
    onSuccess: (r) => {
      const saved = (r as unknown as { callback: Callback }).callback;
      form.setFieldsValue({ token: saved.token, encoding_aes_key: saved.encoding_aes_key });
      message.success(t('integrations.saved'));
      qc.setQueryData(key, saved);
    },
  });
  const remove = useMutation({
    mutationFn: () =>
      unwrap(
        vendor
          ? api.DELETE('/api/v1/vendors/{vendorId}/callback', { params: { path: { vendorId: scope.id } } })
          : api.DELETE('/api/v1/models/{modelId}/callback', { params: { path: { modelId: scope.id } } }),
      ),
    onSuccess: () => {
      form.resetFields();
      message.success(t('integrations.removed'));
      qc.setQueryData(key, null);
    },
    onError: (e) => message.error(c.err(e)),
  });
  const body = (
    <>
      <Typography.Paragraph type="secondary">
        {t(vendor ? 'integrations.vendor.hint' : 'integrations.model.hint')}
      </Typography.Paragraph>
      {cb.error && <Alert type="error" showIcon message={c.err(cb.error)} />}
      {!cb.isLoading && (
        <Form<CallbackForm>
          form={form}
          layout="vertical"
          style={{ maxWidth: 640 }}
          initialValues={cb.data ?? { url: '', verify_device: false }}
          onFinish={(v) => save.mutate(v)}
          data-testid={`callback-form-${scope.kind}`}
        >
          <Form.Item name="url" label={t('integrations.url')} rules={[{ required: true, type: 'url', max: 2048 }]}>
            <Input placeholder="https://example.com/wecom/callback" data-testid={`callback-url-${scope.kind}`} />
          </Form.Item>
          <Form.Item
            name="token"
            label="Token"
            extra={t('integrations.generatedHint')}
            rules={[{ pattern: /^[A-Za-z0-9]{1,32}$/, message: t('integrations.tokenRule') }]}
          >
            <Input maxLength={32} data-testid={`callback-token-${scope.kind}`} />
          </Form.Item>
          <Form.Item
            name="encoding_aes_key"
            label="EncodingAESKey"
            rules={[{ pattern: /^[A-Za-z0-9+/]{43}$/, message: t('integrations.keyRule') }]}
          >
            <Input maxLength={43} data-testid={`callback-key-${scope.kind}`} />
          </Form.Item>
          {vendor && (
            <Form.Item name="verify_device" label={t('integrations.verifyDevice')} valuePropName="checked">
              <Switch data-testid="callback-verify" />
            </Form.Item>
          )}
          {cb.data && (
            <Descriptions
              size="small"
              column={1}
              style={{ marginBottom: 16 }}
              items={[
                {
                  key: 'r',
                  label: t('integrations.receiveId'),
                  children: <Typography.Text code>{cb.data.receive_id}</Typography.Text>,
                },
                { key: 'u', label: t('integrations.updated'), children: c.date(new Date(cb.data.updated_at).toISOString()) },
              ]}
            />
          )}
          {save.error && <Alert type="error" showIcon message={c.err(save.error)} style={{ marginBottom: 12 }} />}
          <Space wrap>
            <Button type="primary" htmlType="submit" loading={save.isPending} data-testid={`callback-save-${scope.kind}`}>
              {t('integrations.save')}
            </Button>
            <Button onClick={() => form.setFieldsValue(newPair())} data-testid={`callback-generate-${scope.kind}`}>
              {t('integrations.generate')}
            </Button>
            {cb.data && (
              <TestEventButton
                testId={`callback-test-${scope.kind}`}
                send={() =>
                  unwrap(
                    vendor
                      ? api.POST('/api/v1/vendors/{vendorId}/callback/test', { params: { path: { vendorId: scope.id } } })
                      : api.POST('/api/v1/models/{modelId}/callback/test', { params: { path: { modelId: scope.id } } }),
                  )
                }
                onSettled={() => void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'deliveries'] })}
              />
            )}
            {cb.data && (
              <Popconfirm
                title={t('integrations.removeConfirm')}
                okText={t('integrations.remove')}
                okButtonProps={{ danger: true }}
                onConfirm={() => remove.mutate()}
              >
                <Button danger>{t('integrations.remove')}</Button>
              </Popconfirm>
            )}
          </Space>
        </Form>
      )}
    </>
  );
  return bare ? body : <Card title={t('integrations.vendor.title')}>{body}</Card>;
}

interface ImportProblem {
  line?: number;
  index?: number;
  message: string;
}

/** The inspection csv, posted as text/csv (the typed client sends JSON only). */
async function importCsv(text: string): Promise<{ imported: number }> {
  const r = await fetch('/api/v1/inspections/import', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'text/csv', accept: 'application/json', 'x-csrf-token': csrfToken() },
    body: text,
  }).catch(() => {
    throw new ApiError(0, 'NETWORK', 'The server cannot be reached; check your connection');
  });
  const body = (await r.json().catch(() => ({}))) as {
    imported?: number;
    error?: { code?: string; message?: string; details?: unknown };
  };
  if (!r.ok)
    throw new ApiError(
      r.status,
      body.error?.code ?? `HTTP_${r.status}`,
      body.error?.message ?? `HTTP ${r.status}`,
      body.error?.details,
    );
  return { imported: body.imported ?? 0 };
}

/** Factory inspection records of the vendor's devices (all-or-nothing; the errors name their lines). */
function Inspections() {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const run = useMutation({ mutationFn: importCsv });
  const problems =
    run.error instanceof ApiError ? ((run.error.details as { errors?: ImportProblem[] } | undefined)?.errors ?? []) : [];
  return (
    <Card title={t('integrations.inspections.title')}>
      <Typography.Paragraph type="secondary">{t('integrations.inspections.hint')}</Typography.Paragraph>
      <Typography.Paragraph>
        <Typography.Text code style={{ wordBreak: 'break-all' }}>
          device_sn,wired_mac,wireless_mac,bluetooth_mac,app_version,camera_sn,imei,result,errors,warnings,inspect_time
        </Typography.Text>
      </Typography.Paragraph>
      <Upload
        accept=".csv,text/csv"
        showUploadList={false}
        beforeUpload={(f) => {
          run.reset();
          void f.text().then((text) => run.mutate(text));
          return false;
        }}
      >
        <Button loading={run.isPending} data-testid="inspections-upload">
          {t('integrations.inspections.upload')}
        </Button>
      </Upload>
      {run.data && (
        <Alert
          type="success"
          showIcon
          style={{ marginTop: 12 }}
          message={t('integrations.inspections.done', { n: run.data.imported })}
          data-testid="inspections-done"
        />
      )}
      {run.error && (
        <Alert
          type="error"
          showIcon
          style={{ marginTop: 12 }}
          message={c.err(run.error)}
          data-testid="inspections-error"
          description={
            problems.length > 0 && (
              <Table<ImportProblem>
                rowKey={(p) => `${p.line ?? p.index ?? ''}:${p.message}`}
                size="small"
                dataSource={problems}
                pagination={problems.length > 20 ? { pageSize: 20 } : false}
                columns={[
                  {
                    title: t('integrations.inspections.line'),
                    key: 'line',
                    width: 80,
                    render: (_, p) => p.line ?? p.index ?? '—',
                  },
                  { title: t('integrations.inspections.problem'), dataIndex: 'message', key: 'message' },
                ]}
              />
            )
          }
        />
      )}
    </Card>
  );
}
