import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Checkbox, Empty, Form, Input, Progress, Select, Space, Table, Tag, Typography } from 'antd';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, csrfToken, unwrap } from '../../api/client.js';
import { withTestId } from '../../components/test-id.js';
import { errorText, useI18n } from '../../i18n/index.js';
import { useModels } from './models.js';

/**
 * /vendors/:vendorId/firmware (issue 13 item 7; docs/console.md): a model's firmware versions with MD5 and
 * SHA-256, an upload streamed with a progress bar (XMLHttpRequest: fetch reports no upload progress),
 * "make current", and the versions the model's fleet runs.
 */
type Firmware = {
  id?: string;
  version?: string;
  md5sum?: string;
  sha256?: string | null;
  size?: number;
  source?: 'url' | 'upload';
  notes?: string | null;
  current?: boolean;
  created_by?: string;
  created_at?: string;
  download_url?: string;
};

function size(n: number | undefined): string {
  if (n === undefined) return '—';
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}

/** The upload: the file streamed as the raw body, progress reported; the answer as the typed client's would be. */
function upload(
  modelId: string,
  q: { version: string; notes?: string; make_current: boolean },
  file: File,
  onProgress: (pct: number) => void,
): Promise<Firmware> {
  const params = new URLSearchParams({ version: q.version, make_current: String(q.make_current) });
  if (q.notes) params.set('notes', q.notes);
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', `/api/v1/models/${encodeURIComponent(modelId)}/firmware/upload?${params}`);
    x.setRequestHeader('content-type', 'application/octet-stream');
    x.setRequestHeader('accept', 'application/json');
    x.setRequestHeader('x-csrf-token', csrfToken());
    x.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(Math.floor((e.loaded / e.total) * 100));
    };
    x.onerror = () => reject(new ApiError(0, 'NETWORK', 'The server cannot be reached; check your connection'));
    x.onload = () => {
      let body: { firmware?: Firmware; error?: { code?: string; message?: string } } = {};
      try {
        body = JSON.parse(x.responseText);
      } catch {
        // not JSON: the status says it
      }
      if (x.status >= 200 && x.status < 300 && body.firmware) resolve(body.firmware);
      else reject(new ApiError(x.status, body.error?.code ?? `HTTP_${x.status}`, body.error?.message ?? `HTTP ${x.status}`));
    };
    x.send(file);
  });
}

export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const models = useModels(vendorId);
  const active = (models.data ?? []).filter((m) => !(m as { archived_at?: string | null }).archived_at);
  const [modelId, setModelId] = useState<string | undefined>();
  useEffect(() => {
    if (!modelId && active[0]) setModelId(active[0].model_id);
  }, [modelId, active]);

  const list = useQuery({
    queryKey: ['models', modelId, 'firmware'],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/models/{modelId}/firmware', { params: { path: { modelId: modelId! } } }))).firmware ??
        []) as Firmware[],
    enabled: !!modelId,
  });
  const fleet = useQuery({
    queryKey: ['models', modelId, 'firmware', 'fleet'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/models/{modelId}/firmware/fleet', { params: { path: { modelId: modelId! } } }))).versions,
    enabled: !!modelId,
  });
  const refresh = () => void qc.invalidateQueries({ queryKey: ['models', modelId, 'firmware'] });
  const makeCurrent = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.POST('/api/v1/models/{modelId}/firmware/{id}/current', { params: { path: { modelId: modelId!, id } } })),
    onSuccess: refresh,
    onError: (e) => message.error(c.err(e)),
  });

  const [form] = Form.useForm<{ version: string; notes?: string; make_current: boolean }>();
  const fileRef = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [pct, setPct] = useState<number | null>(null);
  const [done, setDone] = useState<Firmware | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  const submit = async (v: { version: string; notes?: string; make_current: boolean }) => {
    if (!modelId || !file) return;
    setDone(null);
    setFailed(null);
    setPct(0);
    try {
      const fw = await upload(modelId, v, file, setPct);
      setDone(fw);
      form.resetFields();
      setFile(null);
      if (fileRef.current) fileRef.current.value = '';
      refresh();
    } catch (e) {
      setFailed(errorText(e));
    } finally {
      setPct(null);
    }
  };

  return (
    <Space direction="vertical" size="large" style={{ width: '100%' }}>
      <Space wrap>
        <Typography.Text strong>{t('firmware.model')}</Typography.Text>
        <Select
          style={{ minWidth: 280 }}
          value={modelId}
          onChange={(v) => {
            setModelId(v);
            setDone(null);
          }}
          options={active.map((m) => ({ value: m.model_id, label: `${m.name} (${m.product_key})` }))}
          {...withTestId('firmware-model')}
        />
      </Space>

      <Card title={t('firmware.upload.title')} size="small">
        <Form
          form={form}
          layout="vertical"
          initialValues={{ make_current: true }}
          onFinish={submit}
          style={{ maxWidth: 520 }}
          {...withTestId('firmware-upload')}
        >
          <Form.Item label={t('firmware.upload.file')} required>
            <input ref={fileRef} type="file" onChange={(e) => setFile(e.target.files?.[0] ?? null)} data-testid="firmware-file" />
            {file && <Typography.Text type="secondary">{` ${size(file.size)}`}</Typography.Text>}
          </Form.Item>
          <Form.Item
            name="version"
            label={t('firmware.upload.version')}
            rules={[{ required: true, pattern: /^[\x21-\x7e]{1,32}$/, message: t('firmware.upload.versionRule') }]}
          >
            <Input placeholder="1.4.2" {...withTestId('firmware-version')} />
          </Form.Item>
          <Form.Item name="notes" label={t('firmware.upload.notes')}>
            <Input.TextArea rows={2} maxLength={2000} />
          </Form.Item>
          <Form.Item name="make_current" valuePropName="checked">
            <Checkbox>{t('firmware.upload.makeCurrent')}</Checkbox>
          </Form.Item>
          {pct !== null && <Progress percent={pct} {...withTestId('firmware-progress')} />}
          <Button
            type="primary"
            htmlType="submit"
            disabled={!file || !modelId}
            loading={pct !== null}
            {...withTestId('firmware-submit')}
          >
            {t('firmware.upload.submit')}
          </Button>
        </Form>
        {failed && <Alert type="error" showIcon message={failed} style={{ marginTop: 12 }} />}
        {done && (
          <Alert
            type="success"
            showIcon
            style={{ marginTop: 12 }}
            message={t('firmware.upload.done', { version: done.version ?? '' })}
            description={
              <div className="mono" data-testid="firmware-digests">
                <div>MD5 {done.md5sum}</div>
                <div>SHA-256 {done.sha256}</div>
                <div>{size(done.size)}</div>
              </div>
            }
          />
        )}
      </Card>

      <Card title={t('firmware.versions')} size="small">
        <Table<Firmware>
          rowKey={(f) => f.id ?? ''}
          loading={list.isLoading}
          dataSource={list.data ?? []}
          pagination={false}
          scroll={{ x: 760 }}
          locale={{ emptyText: <Empty description={t('firmware.none')} /> }}
          {...withTestId('firmware-list')}
          columns={[
            {
              title: t('firmware.col.version'),
              render: (_, f) => (
                <Space className="nowrap">
                  <span className="mono">{f.version}</span>
                  {f.current && <Tag color="green">{t('firmware.current')}</Tag>}
                </Space>
              ),
            },
            { title: t('firmware.col.size'), render: (_, f) => <span className="nowrap">{size(f.size)}</span> },
            {
              title: 'MD5 / SHA-256',
              render: (_, f) => (
                <div className="mono small">
                  <Typography.Text copyable={{ text: f.md5sum }}>{f.md5sum}</Typography.Text>
                  <br />
                  {f.sha256 ? (
                    <Typography.Text copyable={{ text: f.sha256 }}>{`${f.sha256.slice(0, 16)}…`}</Typography.Text>
                  ) : (
                    <Typography.Text type="secondary">{t('firmware.noSha')}</Typography.Text>
                  )}
                </div>
              ),
            },
            {
              title: t('firmware.col.source'),
              render: (_, f) => (f.source === 'url' ? t('firmware.source.url') : t('firmware.source.upload')),
            },
            { title: t('firmware.col.published'), render: (_, f) => c.date(f.created_at ?? null) },
            {
              title: '',
              render: (_, f) =>
                f.current ? null : (
                  <Button
                    size="small"
                    onClick={() => f.id && makeCurrent.mutate(f.id)}
                    {...withTestId(`firmware-current-${f.version}`)}
                  >
                    {t('firmware.makeCurrent')}
                  </Button>
                ),
            },
          ]}
        />
      </Card>

      <Card title={t('firmware.fleet')} size="small">
        <Table
          rowKey={(r) => r.version ?? ''}
          loading={fleet.isLoading}
          dataSource={fleet.data ?? []}
          pagination={false}
          locale={{ emptyText: <Empty description={t('firmware.fleetNone')} /> }}
          {...withTestId('firmware-fleet')}
          columns={[
            {
              title: t('firmware.col.version'),
              render: (_, r) => (r.version ? <span className="mono">{r.version}</span> : t('firmware.unreported')),
            },
            { title: t('firmware.col.devices'), dataIndex: 'devices' },
            { title: t('firmware.col.online'), dataIndex: 'online' },
          ]}
        />
      </Card>
    </Space>
  );
}
