import { useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Badge,
  Button,
  Card,
  Form,
  Input,
  Modal,
  Popconfirm,
  Select,
  Space,
  Table,
  Tabs,
  Tag,
  Typography,
} from 'antd';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams, useSearchParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import type { paths } from '../../api/schema.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { useModels } from './models.js';

type ListQuery = NonNullable<paths['/api/v1/vendors/{vendorId}/devices']['get']['parameters']['query']>;
type Page = paths['/api/v1/vendors/{vendorId}/devices']['get']['responses'][200]['content']['application/json'];
type Device = Page['devices'][number];
type LineError = { line: number; sn: string; reason: 'invalid_sn' | 'duplicate_in_list' | 'already_registered' };

const PAGE = 50;
const STATES = ['registered', 'activated', 'bound', 'online'] as const;
const STATE_COLOR = { registered: 'default', activated: 'blue', bound: 'gold', online: 'green' } as const;
const FILTER_KEYS = ['q', 'model_id', 'state', 'online', 'owner_kind', 'firmware_version'] as const;

/** The URL's filters as the list's query: filters live in the address, so a reload or a shared link keeps them. */
function queryOf(p: URLSearchParams): ListQuery {
  const q: ListQuery = {};
  const v = (k: string) => p.get(k) || undefined;
  if (v('q')) q.q = v('q');
  if (v('model_id')) q.model_id = v('model_id');
  const state = v('state');
  if (state && (STATES as readonly string[]).includes(state)) q.state = state as ListQuery['state'];
  if (v('online')) q.online = v('online') === 'true';
  const owner = v('owner_kind');
  if (owner === 'none' || owner === 'user' || owner === 'org') q.owner_kind = owner;
  if (v('firmware_version')) q.firmware_version = v('firmware_version');
  return q;
}

function searchOf(q: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
  return p.toString();
}

/**
 * /vendors/:vendorId/devices — the vendor's fleet across models: search (SN, IMEI/DeviceKey, hw_code),
 * filters, server-side pages of 50, registering one or many SNs, the static-QR spreadsheet of a
 * selection (or of the filters), unregistering unbound devices.
 */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const [selected, setSelected] = useState<string[]>([]);
  const [registering, setRegistering] = useState(false);
  const models = useModels(vendorId);
  const modelName = useMemo(() => new Map((models.data ?? []).map((m) => [m.model_id, m.name])), [models.data]);

  const query = queryOf(params);
  const list = useInfiniteQuery({
    queryKey: ['vendors', vendorId, 'devices', query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/vendors/{vendorId}/devices', {
          params: { path: { vendorId }, query: { ...query, limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const devices = useMemo(() => (list.data?.pages ?? []).flatMap((p) => p.devices), [list.data]);
  const set = (k: (typeof FILTER_KEYS)[number], v: string | undefined) =>
    setParams((p) => {
      const n = new URLSearchParams(p);
      if (v) n.set(k, v);
      else n.delete(k);
      return n;
    });
  const refresh = () => void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'devices'] });

  const unregister = useMutation({
    mutationFn: (sn: string) => unwrap(api.DELETE('/api/v1/devices/{sn}', { params: { path: { sn } } })),
    onSuccess: (_r, sn) => {
      message.success(t('devices.unregistered', { sn }));
      setSelected((s) => s.filter((x) => x !== sn));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });

  const sheetBase = `/api/v1/vendors/${encodeURIComponent(vendorId)}/devices/qr-sheet`;
  const sheetHref = (format: 'csv' | 'xlsx') =>
    `${sheetBase}?${searchOf(selected.length ? { format, sns: selected.join(',') } : { format, ...query })}`;
  const modelOptions = (models.data ?? []).map((m) => ({
    value: m.model_id,
    label: m.archived_at ? `${m.name} (${t('models.archived')})` : m.name,
  }));

  const columns = [
    {
      title: 'SN',
      dataIndex: 'sn',
      render: (sn: string) => (
        <Link to={`/vendors/${vendorId}/devices/${encodeURIComponent(sn)}`} data-testid="device-link">
          <Typography.Text code className="nowrap">
            {sn}
          </Typography.Text>
        </Link>
      ),
    },
    { title: t('devices.model'), dataIndex: 'model_id', render: (id: string) => modelName.get(id) ?? id },
    {
      title: t('devices.state'),
      dataIndex: 'state',
      render: (s: Device['state']) => (
        <Tag color={STATE_COLOR[s]} data-testid="device-state">
          {t(`devices.state.${s}`)}
        </Tag>
      ),
    },
    {
      title: t('devices.online'),
      dataIndex: 'online',
      responsive: ['md' as const],
      render: (on: boolean, d: Device) => (
        <Badge
          className="nowrap"
          status={on ? 'success' : 'default'}
          text={on ? t('devices.onlineYes') : d.last_seen_at ? c.ago(d.last_seen_at) : t('devices.onlineNo')}
        />
      ),
    },
    {
      title: t('devices.owner'),
      responsive: ['lg' as const],
      render: (_: unknown, d: Device) =>
        t(`devices.ownerKind.${d.owner_type === 'org' || d.owner_type === 'user' ? d.owner_type : 'none'}`),
    },
    {
      title: t('devices.firmware'),
      dataIndex: 'firmware_version',
      responsive: ['lg' as const],
      render: (v: string | null) => v ?? '—',
    },
    {
      title: t('devices.deviceKey'),
      dataIndex: 'device_key',
      responsive: ['xl' as const],
      render: (v: string | null) => (v ? <Typography.Text code>{v}</Typography.Text> : '—'),
    },
    { title: t('devices.registered'), dataIndex: 'registered_at', responsive: ['xl' as const], render: (d: string) => c.date(d) },
    {
      title: '',
      render: (_: unknown, d: Device) =>
        d.bound ? null : (
          <Popconfirm
            title={t('devices.unregisterConfirm', { sn: d.sn })}
            description={t('devices.unregisterHint')}
            okText={t('devices.unregister')}
            okButtonProps={withTestId('unregister-ok', { danger: true })}
            onConfirm={() => unregister.mutateAsync(d.sn)}
          >
            <Button size="small" type="link" danger data-testid="device-unregister">
              {t('devices.unregister')}
            </Button>
          </Popconfirm>
        ),
    },
  ];

  return (
    <Card
      title={t('devices.title')}
      extra={
        <Button type="primary" onClick={() => setRegistering(true)} data-testid="devices-register">
          {t('devices.register')}
        </Button>
      }
    >
      <Space wrap style={{ marginBottom: 12 }} data-testid="device-filters">
        <Input.Search
          allowClear
          defaultValue={query.q}
          placeholder={t('devices.search')}
          onSearch={(v) => set('q', v.trim() || undefined)}
          style={{ width: 260 }}
          data-testid="devices-search"
        />
        <Select
          allowClear
          placeholder={t('devices.model')}
          value={query.model_id}
          options={modelOptions}
          onChange={(v?: string) => set('model_id', v)}
          style={{ width: 180 }}
          data-testid="filter-model"
        />
        <Select
          allowClear
          placeholder={t('devices.state')}
          value={query.state}
          options={STATES.map((s) => ({ value: s, label: t(`devices.state.${s}`) }))}
          onChange={(v?: string) => set('state', v)}
          style={{ width: 140 }}
          data-testid="filter-state"
        />
        <Select
          allowClear
          placeholder={t('devices.online')}
          value={query.online === undefined ? undefined : String(query.online)}
          options={[
            { value: 'true', label: t('devices.onlineYes') },
            { value: 'false', label: t('devices.onlineNo') },
          ]}
          onChange={(v?: string) => set('online', v)}
          style={{ width: 120 }}
          data-testid="filter-online"
        />
        <Select
          allowClear
          placeholder={t('devices.owner')}
          value={query.owner_kind}
          options={(['none', 'user', 'org'] as const).map((k) => ({ value: k, label: t(`devices.ownerKind.${k}`) }))}
          onChange={(v?: string) => set('owner_kind', v)}
          style={{ width: 150 }}
          data-testid="filter-owner"
        />
        <Input
          allowClear
          placeholder={t('devices.firmware')}
          defaultValue={query.firmware_version}
          onPressEnter={(e) => set('firmware_version', e.currentTarget.value.trim() || undefined)}
          onChange={(e) => !e.target.value && set('firmware_version', undefined)}
          style={{ width: 130 }}
          data-testid="filter-firmware"
        />
      </Space>
      <Space wrap style={{ marginBottom: 12 }}>
        <Typography.Text type="secondary" data-testid="sheet-scope">
          {selected.length ? t('devices.sheetSelected', { n: selected.length }) : t('devices.sheetFiltered')}
        </Typography.Text>
        <Button href={sheetHref('csv')} download data-testid="sheet-csv">
          {t('devices.sheetCsv')}
        </Button>
        <Button href={sheetHref('xlsx')} download data-testid="sheet-xlsx">
          {t('devices.sheetXlsx')}
        </Button>
      </Space>
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} style={{ marginBottom: 12 }} />}
      <Table
        rowKey="sn"
        size="middle"
        loading={list.isLoading}
        dataSource={devices}
        columns={columns}
        pagination={false}
        rowSelection={{
          selectedRowKeys: selected,
          onChange: (keys) => setSelected(keys as string[]),
          preserveSelectedRowKeys: true,
        }}
        locale={{ emptyText: t('devices.none') }}
        scroll={{ x: true }}
        data-testid="devices-table"
      />
      {list.hasNextPage && (
        <div style={{ textAlign: 'center', marginTop: 12 }}>
          <Button onClick={() => void list.fetchNextPage()} loading={list.isFetchingNextPage} data-testid="devices-more">
            {t('devices.loadMore')}
          </Button>
        </div>
      )}
      <RegisterModal
        open={registering}
        onClose={() => setRegistering(false)}
        modelOptions={modelOptions.filter((o) => !(models.data ?? []).find((m) => m.model_id === o.value)?.archived_at)}
        defaultModel={query.model_id}
        onDone={(n) => {
          message.success(t('devices.registeredN', { n }));
          refresh();
        }}
      />
    </Card>
  );
}

/** Register one SN, or paste many (one per line, all or nothing, each bad line named). */
function RegisterModal({
  open,
  onClose,
  modelOptions,
  defaultModel,
  onDone,
}: {
  open: boolean;
  onClose: () => void;
  modelOptions: Array<{ value: string; label: string }>;
  defaultModel?: string;
  onDone: (n: number) => void;
}) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const [form] = Form.useForm<{ model_id: string; sn?: string; sns?: string }>();
  const [tab, setTab] = useState<'one' | 'many'>('many');
  const [lineErrors, setLineErrors] = useState<LineError[]>([]);
  const [error, setError] = useState<string | null>(null);
  const submit = useMutation({
    mutationFn: async (v: { model_id: string; sn?: string; sns?: string }) => {
      const modelId = v.model_id;
      if (tab === 'one') {
        await unwrap(
          api.POST('/api/v1/models/{modelId}/devices', { params: { path: { modelId } }, body: { sn: (v.sn ?? '').trim() } }),
        );
        return 1;
      }
      const sns = (v.sns ?? '')
        .split(/[\s,;]+/)
        .map((s) => s.trim())
        .filter(Boolean);
      const r = await unwrap(api.POST('/api/v1/models/{modelId}/devices/bulk', { params: { path: { modelId } }, body: { sns } }));
      return r.registered;
    },
    onMutate: () => {
      setLineErrors([]);
      setError(null);
    },
    onSuccess: (n) => {
      form.resetFields(['sn', 'sns']);
      onDone(n);
      onClose();
    },
    onError: (e) => {
      const details = e instanceof ApiError ? (e.details as { errors?: LineError[] } | undefined) : undefined;
      if (details?.errors?.length) setLineErrors(details.errors);
      setError(c.err(e));
    },
  });
  return (
    <Modal
      open={open}
      title={t('devices.register')}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t('devices.registerOk')}
      okButtonProps={withTestId('register-ok', { loading: submit.isPending })}
      width={600}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" initialValues={{ model_id: defaultModel }} onFinish={(v) => submit.mutate(v)}>
        <Form.Item name="model_id" label={t('devices.model')} rules={[{ required: true, message: t('devices.pickModel') }]}>
          <Select options={modelOptions} data-testid="register-model" />
        </Form.Item>
        <Tabs
          activeKey={tab}
          onChange={(k) => setTab(k as 'one' | 'many')}
          items={[
            {
              key: 'many',
              label: t('devices.pasteMany'),
              children: (
                <Form.Item
                  name="sns"
                  extra={t('devices.pasteHint')}
                  rules={[{ required: tab === 'many', message: t('devices.pasteHint') }]}
                >
                  <Input.TextArea rows={8} data-testid="register-sns" placeholder={'BDG0000011\nBDG0000029'} />
                </Form.Item>
              ),
            },
            {
              key: 'one',
              label: t('devices.one'),
              children: (
                <Form.Item name="sn" label="SN" rules={[{ required: tab === 'one' }]}>
                  <Input maxLength={128} data-testid="register-sn" />
                </Form.Item>
              ),
            },
          ]}
        />
      </Form>
      {error && <Alert type="error" showIcon message={error} style={{ marginBottom: 8 }} data-testid="register-error" />}
      {lineErrors.length > 0 && (
        <Table
          rowKey="line"
          size="small"
          pagination={false}
          scroll={{ y: 200 }}
          dataSource={lineErrors}
          data-testid="register-line-errors"
          columns={[
            { title: t('devices.line'), dataIndex: 'line', width: 70 },
            { title: 'SN', dataIndex: 'sn', render: (sn: string) => <Typography.Text code>{sn}</Typography.Text> },
            { title: t('devices.reason'), dataIndex: 'reason', render: (r: LineError['reason']) => t(`devices.reason.${r}`) },
          ]}
        />
      )}
    </Modal>
  );
}
