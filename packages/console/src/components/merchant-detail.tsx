import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Card,
  Descriptions,
  Form,
  Input,
  Modal,
  Popconfirm,
  Radio,
  Select,
  Space,
  Switch,
  Table,
  Tag,
  Typography,
  Upload,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { ApiError, api, csrfToken, unwrap } from '../api/client.js';
import { useI18n } from '../i18n/index.js';
import { withTestId } from './test-id.js';

export interface MerchantKey {
  id: string;
  serial_no: string;
  kind: string;
  name: string;
  not_after: string | null;
  created_at: string;
  revoked_at: string | null;
}

export interface SubMerchant {
  org_id: string;
  name: string;
  sub_mchid: string;
  sub_merchant_shortname: string;
}

export interface Merchant {
  org_id: string;
  name: string;
  mchid: string;
  merchant_shortname: string;
  key_mode: 'public_key' | 'platform_certificate';
  has_apiv3_key: boolean;
  fleet_total: number;
  sub_merchants: SubMerchant[];
  keys: MerchantKey[];
  created_at: string;
}

/** The query key of one merchant: the operator's merchants page and an organisation's merchant page share it. */
export const merchantKey = (mchid: string) => ['/api/v1/merchants', mchid];

/**
 * One merchant, for an operator (/operator/merchants) and for the merchant organisation's super admins
 * (/orgs/:orgId/merchant): its key mode and APIv3 key, API keys, the platform key, sub-merchants and the
 * inspection import. `operator` adds what only operators do (the short name, rebuilding the device order).
 */
export function MerchantDetail({ mchid, operator }: { mchid: string; operator: boolean }) {
  const c = useI18n();
  const merchant = useQuery({
    queryKey: merchantKey(mchid),
    queryFn: () => unwrap(api.GET('/api/v1/merchants/{mchid}', { params: { path: { mchid } } })),
  });
  const m = (merchant.data as { merchant?: Merchant } | undefined)?.merchant;
  if (merchant.error) return <Alert type="error" showIcon message={c.err(merchant.error)} />;
  if (!m) return <Card loading />;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }} data-testid="merchant-detail">
      <Overview m={m} operator={operator} />
      <Keys m={m} />
      <PlatformKey />
      <SubMerchants m={m} operator={operator} />
      <Inspections mchid={m.mchid} />
    </Space>
  );
}

function useRefresh(mchid: string) {
  const qc = useQueryClient();
  return () => {
    void qc.invalidateQueries({ queryKey: merchantKey(mchid) });
    void qc.invalidateQueries({ queryKey: ['/api/v1/merchants'], exact: true });
  };
}

function Overview({ m, operator }: { m: Merchant; operator: boolean }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const refresh = useRefresh(m.mchid);
  const [renaming, setRenaming] = useState(false);
  const [setting, setSetting] = useState(false);
  const [shortname, setShortname] = useState(m.merchant_shortname);
  const [apiKey, setApiKey] = useState('');
  const patch = useMutation({
    mutationFn: (body: { key_mode?: Merchant['key_mode']; merchant_shortname?: string }) =>
      unwrap(api.PATCH('/api/v1/merchants/{mchid}', { params: { path: { mchid: m.mchid } }, body })),
    onSuccess: () => {
      message.success(t('merchants.saved'));
      setRenaming(false);
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const apiv3 = useMutation({
    mutationFn: (key?: string) =>
      unwrap(
        api.PUT('/api/v1/merchants/{mchid}/apiv3-key', {
          params: { path: { mchid: m.mchid } },
          body: key === undefined ? {} : { apiv3_key: key },
        }),
      ) as unknown as Promise<{ apiv3_key?: string }>,
    onSuccess: (r) => {
      if (!r.apiv3_key) message.success(t('merchants.apiv3Saved'));
      setSetting(false);
      setApiKey('');
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const reindex = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/merchants/{mchid}/fleet/reindex', { params: { path: { mchid: m.mchid } } }),
      ) as unknown as Promise<{
        added: number;
        removed: number;
        total: number;
      }>,
    onSuccess: (r) => {
      message.success(t('merchants.reindexed', { added: r.added, removed: r.removed, total: r.total }));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const generated = apiv3.data?.apiv3_key;
  return (
    <Card
      title={
        <Space wrap>
          {t('merchants.merchant')}
          <Typography.Text code data-testid="merchant-mchid">
            {m.mchid}
          </Typography.Text>
        </Space>
      }
      extra={
        operator && (
          <Popconfirm title={t('merchants.reindexConfirm')} onConfirm={() => reindex.mutate()}>
            <Button size="small" loading={reindex.isPending}>
              {t('merchants.reindex')}
            </Button>
          </Popconfirm>
        )
      }
    >
      <Descriptions size="small" column={{ xs: 1, md: 2 }}>
        <Descriptions.Item label={t('merchants.shortname')}>
          <Space size={4} wrap>
            <span data-testid="merchant-shortname">{m.merchant_shortname}</span>
            {operator && (
              <Button size="small" type="link" onClick={() => setRenaming(true)}>
                {t('merchants.edit')}
              </Button>
            )}
          </Space>
        </Descriptions.Item>
        <Descriptions.Item label={t('merchants.org')}>
          <Link to={`/orgs/${m.org_id}`}>{m.name}</Link>
        </Descriptions.Item>
        <Descriptions.Item label={t('merchants.keyMode')}>
          <Select<Merchant['key_mode']>
            size="small"
            value={m.key_mode}
            style={{ minWidth: 200 }}
            onChange={(key_mode) => patch.mutate({ key_mode })}
            loading={patch.isPending}
            data-testid="merchant-key-mode"
            options={[
              { value: 'public_key', label: t('merchants.mode.public_key') },
              { value: 'platform_certificate', label: t('merchants.mode.platform_certificate') },
            ]}
          />
        </Descriptions.Item>
        <Descriptions.Item label={t('merchants.apiv3')}>
          <Space size={4} wrap>
            {m.has_apiv3_key ? (
              <Tag color="green" data-testid="merchant-apiv3-state">
                {t('merchants.apiv3Set')}
              </Tag>
            ) : (
              <Tag color="orange" data-testid="merchant-apiv3-state">
                {t('merchants.apiv3None')}
              </Tag>
            )}
            <Popconfirm
              title={m.has_apiv3_key ? t('merchants.apiv3ReplaceConfirm') : t('merchants.apiv3GenerateConfirm')}
              onConfirm={() => apiv3.mutate(undefined)}
              okButtonProps={withTestId('merchant-apiv3-generate-confirm')}
            >
              <Button
                size="small"
                loading={apiv3.isPending && apiv3.variables === undefined}
                data-testid="merchant-apiv3-generate"
              >
                {t('merchants.apiv3Generate')}
              </Button>
            </Popconfirm>
            <Button size="small" onClick={() => setSetting(true)}>
              {t('merchants.apiv3Enter')}
            </Button>
          </Space>
        </Descriptions.Item>
        <Descriptions.Item label={t('merchants.fleet')}>
          <span data-testid="merchant-fleet">{m.fleet_total}</span>
        </Descriptions.Item>
        <Descriptions.Item label={t('merchants.created')}>{c.date(m.created_at)}</Descriptions.Item>
      </Descriptions>
      {generated && (
        <Alert
          type="success"
          showIcon
          closable
          onClose={() => apiv3.reset()}
          message={t('merchants.apiv3ShownOnce')}
          description={
            <Typography.Paragraph
              copyable={{ text: generated }}
              code
              style={{ margin: 0, wordBreak: 'break-all' }}
              data-testid="merchant-apiv3-key"
            >
              {generated}
            </Typography.Paragraph>
          }
        />
      )}
      <Modal
        open={renaming}
        title={t('merchants.shortname')}
        onCancel={() => setRenaming(false)}
        onOk={() => patch.mutate({ merchant_shortname: shortname.trim() })}
        confirmLoading={patch.isPending}
        destroyOnHidden
      >
        <Input value={shortname} onChange={(e) => setShortname(e.target.value)} maxLength={64} />
      </Modal>
      <Modal
        open={setting}
        title={t('merchants.apiv3Enter')}
        onCancel={() => setSetting(false)}
        onOk={() => apiv3.mutate(apiKey)}
        okButtonProps={{ disabled: apiKey.length !== 32 }}
        confirmLoading={apiv3.isPending}
        destroyOnHidden
      >
        <Typography.Paragraph type="secondary">{t('merchants.apiv3EnterHelp')}</Typography.Paragraph>
        <Input.Password value={apiKey} onChange={(e) => setApiKey(e.target.value)} maxLength={32} showCount autoComplete="off" />
      </Modal>
    </Card>
  );
}

interface NewKey {
  kind: 'certificate' | 'public_key';
  pem: string;
  serial_no?: string;
  name?: string;
}

function Keys({ m }: { m: Merchant }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const refresh = useRefresh(m.mchid);
  const qc = useQueryClient();
  const [adding, setAdding] = useState(false);
  const [showRevoked, setShowRevoked] = useState(false);
  const [form] = Form.useForm<NewKey>();
  const kind = Form.useWatch('kind', form) ?? 'certificate';
  const all = useQuery({
    queryKey: [...merchantKey(m.mchid), 'keys', 'all'],
    queryFn: () =>
      unwrap(
        api.GET('/api/v1/merchants/{mchid}/keys', {
          params: { path: { mchid: m.mchid }, query: { include_revoked: true } },
        }),
      ),
    enabled: showRevoked,
  });
  const add = useMutation({
    mutationFn: (v: NewKey) =>
      unwrap(
        api.POST('/api/v1/merchants/{mchid}/keys', {
          params: { path: { mchid: m.mchid } },
          body:
            v.kind === 'certificate'
              ? { certificate_pem: v.pem.trim(), name: v.name?.trim() || undefined }
              : { public_key_pem: v.pem.trim(), serial_no: v.serial_no?.trim(), name: v.name?.trim() || undefined },
        }),
      ),
    onSuccess: () => {
      message.success(t('merchants.keyAdded'));
      setAdding(false);
      form.resetFields();
      refresh();
      void qc.invalidateQueries({ queryKey: [...merchantKey(m.mchid), 'keys'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const revoke = useMutation({
    mutationFn: (serialNo: string) =>
      unwrap(api.DELETE('/api/v1/merchants/{mchid}/keys/{serialNo}', { params: { path: { mchid: m.mchid, serialNo } } })),
    onSuccess: () => {
      message.success(t('merchants.keyRevoked'));
      refresh();
      void qc.invalidateQueries({ queryKey: [...merchantKey(m.mchid), 'keys'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = showRevoked ? (((all.data as { keys?: MerchantKey[] } | undefined)?.keys ?? []) as MerchantKey[]) : m.keys;
  return (
    <Card
      title={t('merchants.keys')}
      extra={
        <Space wrap>
          <Space size={4}>
            <Switch size="small" checked={showRevoked} onChange={setShowRevoked} />
            <Typography.Text type="secondary">{t('merchants.showRevoked')}</Typography.Text>
          </Space>
          <Button type="primary" size="small" onClick={() => setAdding(true)} data-testid="merchant-key-add">
            {t('merchants.keyAdd')}
          </Button>
        </Space>
      }
    >
      <Typography.Paragraph type="secondary">{t('merchants.keysHelp')}</Typography.Paragraph>
      <Table<MerchantKey>
        rowKey="id"
        size="small"
        dataSource={rows}
        loading={showRevoked && all.isLoading}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('merchants.noKeys') }}
        data-testid="merchant-keys"
        columns={[
          {
            title: t('merchants.serial'),
            key: 'serial',
            render: (_, k) => <Typography.Text code>{k.serial_no}</Typography.Text>,
          },
          { title: t('merchants.keyName'), dataIndex: 'name', key: 'name' },
          {
            title: t('merchants.keyKind'),
            key: 'kind',
            render: (_, k) => t(`merchants.kind.${k.kind}`, { defaultValue: k.kind }),
          },
          { title: t('merchants.notAfter'), key: 'notAfter', render: (_, k) => (k.not_after ? c.date(k.not_after) : '—') },
          {
            title: t('merchants.status'),
            key: 'status',
            render: (_, k) =>
              k.revoked_at ? <Tag>{t('merchants.revoked')}</Tag> : <Tag color="green">{t('merchants.active')}</Tag>,
          },
          {
            title: '',
            key: 'revoke',
            render: (_, k) =>
              !k.revoked_at && (
                <Popconfirm
                  title={t('merchants.keyRevokeConfirm', { serial: k.serial_no })}
                  onConfirm={() => revoke.mutate(k.serial_no)}
                  okButtonProps={withTestId('merchant-key-revoke-confirm', { danger: true })}
                >
                  <Button size="small" danger data-testid={`merchant-key-revoke-${k.serial_no}`}>
                    {t('merchants.revoke')}
                  </Button>
                </Popconfirm>
              ),
          },
        ]}
      />
      <Modal
        open={adding}
        title={t('merchants.keyAdd')}
        onCancel={() => setAdding(false)}
        onOk={() => form.submit()}
        confirmLoading={add.isPending}
        okButtonProps={withTestId('merchant-key-save')}
        destroyOnHidden
      >
        <Form<NewKey>
          form={form}
          layout="vertical"
          initialValues={{ kind: 'certificate' }}
          onFinish={(v) => add.mutate(v)}
          preserve={false}
        >
          <Form.Item name="kind">
            <Radio.Group
              optionType="button"
              options={[
                { value: 'certificate', label: t('merchants.kind.certificate') },
                { value: 'public_key', label: t('merchants.kind.public_key') },
              ]}
            />
          </Form.Item>
          <Form.Item
            name="pem"
            label={kind === 'certificate' ? t('merchants.certPem') : t('merchants.publicKeyPem')}
            extra={
              <Upload
                accept=".pem,.crt,.cer,text/plain"
                showUploadList={false}
                beforeUpload={(file) => {
                  void file.text().then((text) => form.setFieldValue('pem', text));
                  return false;
                }}
              >
                <Button size="small" type="link" style={{ padding: 0 }}>
                  {t('merchants.pemFromFile')}
                </Button>
              </Upload>
            }
            rules={[{ required: true, whitespace: true }]}
          >
            <Input.TextArea
              rows={6}
              placeholder="-----BEGIN …-----"
              style={{ fontFamily: 'monospace' }}
              data-testid="merchant-key-pem"
            />
          </Form.Item>
          {kind === 'public_key' && (
            <Form.Item
              name="serial_no"
              label={t('merchants.serial')}
              rules={[{ required: true, pattern: /^[0-9A-Za-z_-]{1,64}$/ }]}
            >
              <Input maxLength={64} />
            </Form.Item>
          )}
          <Form.Item name="name" label={t('merchants.keyName')}>
            <Input maxLength={128} />
          </Form.Item>
        </Form>
      </Modal>
    </Card>
  );
}

interface PlatformKeyView {
  pub_key_id: string;
  certificate_serial: string;
  not_after: string;
}

function PlatformKey() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const key = useQuery({
    queryKey: ['/api/v1/merchants/platform-key'],
    queryFn: () => unwrap(api.GET('/api/v1/merchants/platform-key', { params: { query: { format: 'json' } } })),
    staleTime: 5 * 60_000,
  });
  const k = (key.data as { platform_key?: PlatformKeyView } | undefined)?.platform_key;
  return (
    <Card title={t('merchants.platformKey')} loading={key.isLoading}>
      {key.error && <Alert type="error" showIcon message={c.err(key.error)} />}
      <Typography.Paragraph type="secondary">{t('merchants.platformKeyHelp')}</Typography.Paragraph>
      {k && (
        <Descriptions size="small" column={1}>
          <Descriptions.Item label={t('merchants.pubKeyId')}>
            <Typography.Text code copyable data-testid="platform-key-id">
              {k.pub_key_id}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('merchants.certSerial')}>
            <Typography.Text code>{k.certificate_serial}</Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('merchants.notAfter')}>{c.date(k.not_after)}</Descriptions.Item>
        </Descriptions>
      )}
      <a href="/api/v1/merchants/platform-key?format=pem" download data-testid="platform-key-download">
        <Button>{t('merchants.platformKeyDownload')}</Button>
      </a>
    </Card>
  );
}

interface Attach {
  how: 'new' | 'existing';
  name?: string;
  org_id?: string;
  sub_mchid: string;
  sub_merchant_shortname: string;
}

function SubMerchants({ m, operator }: { m: Merchant; operator: boolean }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const refresh = useRefresh(m.mchid);
  const [attaching, setAttaching] = useState(false);
  const [renaming, setRenaming] = useState<SubMerchant | null>(null);
  const [newName, setNewName] = useState('');
  const [form] = Form.useForm<Attach>();
  const how = Form.useWatch('how', form) ?? 'new';
  const orgs = useQuery({
    queryKey: ['/api/v1/orgs'],
    queryFn: () => unwrap(api.GET('/api/v1/orgs')),
    enabled: attaching,
  });
  // An operator may attach any organisation; a super admin only one they administer as super admin too.
  const candidates = (
    ((orgs.data as { organisations?: Array<{ id: string; name: string; role: string | null }> } | undefined)?.organisations ??
      []) as Array<{ id: string; name: string; role: string | null }>
  ).filter((o) => o.id !== m.org_id && (operator || o.role === 'super_admin'));
  const attach = useMutation({
    mutationFn: (v: Attach) =>
      unwrap(
        api.POST('/api/v1/merchants/{mchid}/sub-merchants', {
          params: { path: { mchid: m.mchid } },
          body: {
            ...(v.how === 'new' ? { name: v.name?.trim() } : { org_id: v.org_id }),
            sub_mchid: v.sub_mchid.trim(),
            sub_merchant_shortname: v.sub_merchant_shortname.trim(),
          },
        }),
      ),
    onSuccess: () => {
      message.success(t('merchants.subAttached'));
      setAttaching(false);
      form.resetFields();
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rename = useMutation({
    mutationFn: ({ sub, name }: { sub: SubMerchant; name: string }) =>
      unwrap(
        api.PATCH('/api/v1/merchants/{mchid}/sub-merchants/{subMchid}', {
          params: { path: { mchid: m.mchid, subMchid: sub.sub_mchid } },
          body: { sub_merchant_shortname: name },
        }),
      ),
    onSuccess: () => {
      message.success(t('merchants.saved'));
      setRenaming(null);
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const detach = useMutation({
    mutationFn: (sub: SubMerchant) =>
      unwrap(
        api.DELETE('/api/v1/merchants/{mchid}/sub-merchants/{subMchid}', {
          params: { path: { mchid: m.mchid, subMchid: sub.sub_mchid } },
        }),
      ),
    onSuccess: () => {
      message.success(t('merchants.subDetached'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  return (
    <Card
      title={t('merchants.subs')}
      extra={
        <Button size="small" type="primary" onClick={() => setAttaching(true)} data-testid="merchant-sub-add">
          {t('merchants.subAdd')}
        </Button>
      }
    >
      <Table<SubMerchant>
        rowKey="org_id"
        size="small"
        dataSource={m.sub_merchants}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('merchants.noSubs') }}
        data-testid="merchant-subs"
        columns={[
          {
            title: t('merchants.subMchid'),
            key: 'mchid',
            render: (_, s) => <Typography.Text code>{s.sub_mchid}</Typography.Text>,
          },
          { title: t('merchants.shortname'), dataIndex: 'sub_merchant_shortname', key: 'shortname' },
          { title: t('merchants.org'), key: 'org', render: (_, s) => <Link to={`/orgs/${s.org_id}`}>{s.name}</Link> },
          {
            title: '',
            key: 'actions',
            render: (_, s) => (
              <Space size="small">
                <Button
                  size="small"
                  onClick={() => {
                    setNewName(s.sub_merchant_shortname);
                    setRenaming(s);
                  }}
                >
                  {t('merchants.rename')}
                </Button>
                <Popconfirm
                  title={t('merchants.subDetachConfirm', { name: s.sub_merchant_shortname })}
                  onConfirm={() => detach.mutate(s)}
                  okButtonProps={{ danger: true }}
                >
                  <Button size="small" danger>
                    {t('merchants.detach')}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <Modal
        open={attaching}
        title={t('merchants.subAdd')}
        onCancel={() => setAttaching(false)}
        onOk={() => form.submit()}
        confirmLoading={attach.isPending}
        okButtonProps={withTestId('merchant-sub-save')}
        destroyOnHidden
      >
        <Form<Attach>
          form={form}
          layout="vertical"
          initialValues={{ how: 'new' }}
          onFinish={(v) => attach.mutate(v)}
          preserve={false}
        >
          <Form.Item name="how">
            <Radio.Group
              optionType="button"
              options={[
                { value: 'new', label: t('merchants.subNewOrg') },
                { value: 'existing', label: t('merchants.subExistingOrg') },
              ]}
            />
          </Form.Item>
          {how === 'new' ? (
            <Form.Item name="name" label={t('merchants.subOrgName')} rules={[{ required: true, whitespace: true, max: 128 }]}>
              <Input maxLength={128} data-testid="merchant-sub-org-name" />
            </Form.Item>
          ) : (
            <Form.Item
              name="org_id"
              label={t('merchants.org')}
              rules={[{ required: true }]}
              extra={!operator && t('merchants.subExistingHelp')}
            >
              <Select
                showSearch
                optionFilterProp="label"
                loading={orgs.isLoading}
                options={candidates.map((o) => ({ value: o.id, label: o.name }))}
                notFoundContent={t('merchants.noCandidates')}
              />
            </Form.Item>
          )}
          <Form.Item name="sub_mchid" label={t('merchants.subMchid')} rules={[{ required: true, pattern: /^[0-9]{1,32}$/ }]}>
            <Input inputMode="numeric" maxLength={32} data-testid="merchant-sub-mchid" />
          </Form.Item>
          <Form.Item
            name="sub_merchant_shortname"
            label={t('merchants.shortname')}
            rules={[{ required: true, whitespace: true, max: 64 }]}
          >
            <Input maxLength={64} data-testid="merchant-sub-shortname" />
          </Form.Item>
        </Form>
      </Modal>
      <Modal
        open={renaming !== null}
        title={t('merchants.rename')}
        onCancel={() => setRenaming(null)}
        onOk={() => renaming && rename.mutate({ sub: renaming, name: newName.trim() })}
        confirmLoading={rename.isPending}
        destroyOnHidden
      >
        <Input value={newName} onChange={(e) => setNewName(e.target.value)} maxLength={64} />
      </Modal>
    </Card>
  );
}

interface ImportProblem {
  line?: number;
  index?: number;
  message: string;
}

/** The inspection csv, posted as text/csv (the typed client sends JSON only). */
async function importCsv(mchid: string, text: string): Promise<{ imported: number }> {
  const r = await fetch(`/api/v1/merchants/${encodeURIComponent(mchid)}/inspections/import`, {
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

function Inspections({ mchid }: { mchid: string }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const [file, setFile] = useState<string | null>(null);
  const run = useMutation({ mutationFn: (text: string) => importCsv(mchid, text) });
  const problems =
    run.error instanceof ApiError
      ? (((run.error.details as { errors?: ImportProblem[] } | undefined)?.errors ?? []) as ImportProblem[])
      : [];
  return (
    <Card title={t('merchants.inspections')}>
      <Typography.Paragraph type="secondary">{t('merchants.inspectionsHelp')}</Typography.Paragraph>
      <Typography.Paragraph>
        <Typography.Text code style={{ wordBreak: 'break-all' }}>
          device_sn,wired_mac,wireless_mac,bluetooth_mac,app_version,camera_sn,imei,result,errors,warnings,inspect_time
        </Typography.Text>
      </Typography.Paragraph>
      <Upload
        accept=".csv,text/csv"
        showUploadList={false}
        beforeUpload={(f) => {
          setFile(f.name);
          run.reset();
          void f.text().then((text) => run.mutate(text));
          return false;
        }}
      >
        <Button loading={run.isPending} data-testid="inspections-upload">
          {t('merchants.inspectionsUpload')}
        </Button>
      </Upload>
      {file && (
        <Typography.Text type="secondary" style={{ marginLeft: 8 }}>
          {file}
        </Typography.Text>
      )}
      {run.data && (
        <Alert
          type="success"
          showIcon
          style={{ marginTop: 12 }}
          message={t('merchants.inspectionsDone', { n: run.data.imported })}
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
                  { title: t('merchants.line'), key: 'line', width: 80, render: (_, p) => p.line ?? p.index ?? '—' },
                  { title: t('merchants.problem'), dataIndex: 'message', key: 'message' },
                ]}
                data-testid="inspections-problems"
              />
            )
          }
        />
      )}
    </Card>
  );
}
