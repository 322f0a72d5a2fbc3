import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Badge, Button, Card, Form, Grid, Input, Modal, Radio, Select, Space, Table, Tag, Typography } from 'antd';
import { type HTMLAttributes, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import type { paths } from '../../api/schema.js';
import { DepartmentSelect, useDepartments } from '../../components/department-tree.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { useMe } from '../../session.js';

type ListQuery = NonNullable<paths['/api/v1/orgs/{orgId}/devices']['get']['parameters']['query']>;
type Page = paths['/api/v1/orgs/{orgId}/devices']['get']['responses'][200]['content']['application/json'];
type Device = Page['devices'][number];
type BulkResult = { sn: string; ok: boolean; error?: { code: string; message: string } };

interface Filters {
  q?: string;
  department_id?: string;
  model_id?: string;
  online?: 'true' | 'false';
  firmware_version?: string;
  bound_by?: string;
}

const PAGE = 50;

/** The filters as the list's query (and the csv link's search string). */
function toQuery(f: Filters): ListQuery {
  const q: ListQuery = {};
  if (f.q) q.q = f.q;
  if (f.department_id) q.department_id = f.department_id;
  if (f.model_id) q.model_id = f.model_id;
  if (f.online) q.online = f.online === 'true';
  if (f.firmware_version) q.firmware_version = f.firmware_version;
  if (f.bound_by) q.bound_by = f.bound_by;
  return q;
}

/**
 * /orgs/:orgId/devices (and the organisation's index) — its devices with filters, bulk unbind and bulk
 * move to a department, per-row transfer to another organisation, and the csv of the current filters.
 */
export function Component() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message, modal } = App.useApp();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [filters, setFilters] = useState<Filters>({});
  const [selected, setSelected] = useState<string[]>([]);
  const [moving, setMoving] = useState(false);
  const [transferring, setTransferring] = useState<Device | null>(null);
  const depts = useDepartments(orgId);
  const phone = !Grid.useBreakpoint().md;
  // Models and binders met so far feed their filters (an organisation has no model list of its own).
  const seenModels = useRef(new Map<string, string>());

  const query = toQuery(filters);
  const list = useInfiniteQuery({
    queryKey: ['orgs', orgId, 'devices', query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/api/v1/orgs/{orgId}/devices', {
          params: { path: { orgId }, query: { ...query, limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const devices = useMemo(() => (list.data?.pages ?? []).flatMap((p) => p.devices), [list.data]);
  for (const d of devices) seenModels.current.set(d.model_id, d.model_name);
  const members = useQuery({
    queryKey: ['orgs', orgId, 'members', ''],
    queryFn: async () => (await unwrap(api.GET('/api/v1/orgs/{orgId}/members', { params: { path: { orgId } } }))).members ?? [],
  });

  const refresh = () => {
    setSelected([]);
    void qc.invalidateQueries({ queryKey: ['orgs', orgId, 'devices'] });
  };
  /** Says how a bulk action went: all done, or which devices failed and why. */
  const report = (results: BulkResult[], done: string) => {
    const failed = results.filter((r) => !r.ok);
    const ok = results.length - failed.length;
    if (failed.length === 0) message.success(t(done, { n: ok }));
    else
      modal.warning({
        title: t('devices.partial', { ok, failed: failed.length }),
        content: (
          <ul data-testid="bulk-failures" style={{ paddingInlineStart: 18 }}>
            {failed.map((r) => (
              <li key={r.sn}>
                <Typography.Text code>{r.sn}</Typography.Text> {r.error ? c.err(asError(r.error)) : ''}
              </li>
            ))}
          </ul>
        ),
      });
    refresh();
  };
  const unbind = useMutation({
    mutationFn: (sns: string[]) =>
      unwrap(api.POST('/api/v1/orgs/{orgId}/devices/bulk-unbind', { params: { path: { orgId } }, body: { sns } })),
    onSuccess: (r) => report(r.results, 'devices.unbound'),
    onError: (e) => message.error(c.err(e)),
  });
  const confirmUnbind = () =>
    modal.confirm({
      title: t('devices.unbindConfirm', { n: selected.length }),
      content: t('devices.unbindHint'),
      okText: t('devices.unbind'),
      okButtonProps: withTestId('bulk-unbind-ok', { danger: true }),
      onOk: () => unbind.mutateAsync(selected),
    });

  const csvPath = `/api/v1/orgs/${encodeURIComponent(orgId)}/devices.csv`;
  const csvHref = csvPath + search(query);
  const d = depts.data ?? [];
  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={t('devices.title')}
        extra={
          <Button href={csvHref} download data-testid="devices-csv">
            {t('devices.exportCsv')}
          </Button>
        }
      >
        <Space
          wrap
          direction={phone ? 'vertical' : 'horizontal'}
          style={{ marginBottom: 12, ...(phone ? { width: '100%' } : {}) }}
          data-testid="device-filters"
        >
          <Input.Search
            allowClear
            placeholder={t('devices.search')}
            onSearch={(v) => set({ q: v.trim() || undefined })}
            style={{ width: phone ? '100%' : 220 }}
            data-testid="devices-search"
          />
          <div style={{ width: phone ? '100%' : 200 }}>
            <DepartmentSelect
              depts={d}
              value={filters.department_id}
              onChange={(v) => set({ department_id: (v as string | undefined) || undefined })}
              placeholder={t('devices.department')}
              testId="filter-department"
            />
          </div>
          <Select
            allowClear
            placeholder={t('devices.model')}
            style={{ width: phone ? '100%' : 180 }}
            value={filters.model_id}
            onChange={(v?: string) => set({ model_id: v })}
            options={[...seenModels.current].map(([value, label]) => ({ value, label }))}
            data-testid="filter-model"
          />
          <Select
            allowClear
            placeholder={t('devices.online')}
            style={{ width: phone ? '100%' : 130 }}
            value={filters.online}
            onChange={(v?: 'true' | 'false') => set({ online: v })}
            options={[
              { value: 'true', label: t('devices.onlineYes') },
              { value: 'false', label: t('devices.onlineNo') },
            ]}
            data-testid="filter-online"
          />
          <Input
            allowClear
            placeholder={t('devices.firmware')}
            style={{ width: phone ? '100%' : 150 }}
            onPressEnter={(e) => set({ firmware_version: e.currentTarget.value.trim() || undefined })}
            onChange={(e) => {
              if (!e.target.value) set({ firmware_version: undefined });
            }}
            data-testid="filter-firmware"
          />
          <Select
            allowClear
            showSearch
            optionFilterProp="label"
            placeholder={t('devices.boundBy')}
            style={{ width: phone ? '100%' : 180 }}
            value={filters.bound_by}
            onChange={(v?: string) => set({ bound_by: v })}
            options={(members.data ?? []).map((m) => ({ value: m.user_id, label: `${m.display_name} (@${m.username})` }))}
            data-testid="filter-bound-by"
          />
        </Space>

        {selected.length > 0 && (
          <Alert
            type="info"
            style={{ marginBottom: 12 }}
            data-testid="bulk-bar"
            message={
              <Space wrap>
                <span>{t('devices.selected', { n: selected.length })}</span>
                <Button size="small" onClick={() => setMoving(true)} data-testid="bulk-move">
                  {t('devices.move')}
                </Button>
                <Button size="small" danger loading={unbind.isPending} onClick={confirmUnbind} data-testid="bulk-unbind">
                  {t('devices.unbind')}
                </Button>
                <Button size="small" type="link" onClick={() => setSelected([])}>
                  {t('devices.clearSelection')}
                </Button>
              </Space>
            }
          />
        )}

        {list.error && <Alert type="error" showIcon message={c.err(list.error)} style={{ marginBottom: 12 }} />}
        <Table<Device>
          rowKey="sn"
          size="middle"
          loading={list.isLoading}
          dataSource={devices}
          pagination={false}
          scroll={{ x: 'max-content' }}
          data-testid="org-devices-table"
          locale={{ emptyText: t('devices.empty') }}
          rowSelection={{ selectedRowKeys: selected, onChange: (keys) => setSelected(keys as string[]) }}
          onRow={(r) => ({
            onClick: (e) => {
              // Clicks on the row's own controls (checkbox, buttons) are theirs.
              if ((e.target as HTMLElement).closest('button, a, input, .ant-checkbox-wrapper, .ant-table-selection-column'))
                return;
              navigate(`/devices/${encodeURIComponent(r.sn)}`);
            },
            style: { cursor: 'pointer' },
            ...({ 'data-testid': `device-row-${r.sn}` } as HTMLAttributes<HTMLElement>),
          })}
          columns={
            phone
              ? [
                  {
                    title: t('devices.title'),
                    key: 'device',
                    render: (_: unknown, r: Device) => (
                      <Space direction="vertical" size={2}>
                        <Space size={6} wrap>
                          <Typography.Text code>{r.sn}</Typography.Text>
                          <Badge
                            status={r.online ? 'success' : 'default'}
                            text={r.online ? t('devices.onlineYes') : t('devices.onlineNo')}
                          />
                        </Space>
                        <Typography.Text strong>{r.remark_name ?? r.default_name}</Typography.Text>
                        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                          {r.model_name}
                          {r.firmware_version ? ` · ${r.firmware_version}` : ''}
                          {r.departments.length ? ` · ${r.departments.map((x) => x.name).join(', ')}` : ''}
                        </Typography.Text>
                        {r.my_actions.includes('unbind') && (
                          <Button size="small" onClick={() => setTransferring(r)} data-testid={`transfer-${r.sn}`}>
                            {t('devices.transfer')}
                          </Button>
                        )}
                      </Space>
                    ),
                  },
                ]
              : [
                  { title: 'SN', dataIndex: 'sn', render: (sn: string) => <Typography.Text code>{sn}</Typography.Text> },
                  { title: t('devices.name'), key: 'name', render: (_, r) => r.remark_name ?? r.default_name },
                  { title: t('devices.model'), dataIndex: 'model_name' },
                  {
                    title: t('devices.state'),
                    dataIndex: 'online',
                    render: (on: boolean) => (
                      <Badge status={on ? 'success' : 'default'} text={on ? t('devices.onlineYes') : t('devices.onlineNo')} />
                    ),
                  },
                  { title: t('devices.firmware'), dataIndex: 'firmware_version', render: (v: string | null) => v ?? '—' },
                  {
                    title: t('devices.department'),
                    dataIndex: 'departments',
                    render: (ds: Device['departments']) =>
                      ds.length ? (
                        ds.map((x) => <Tag key={x.id}>{x.name}</Tag>)
                      ) : (
                        <Typography.Text type="secondary">—</Typography.Text>
                      ),
                  },
                  {
                    title: t('devices.boundBy'),
                    dataIndex: 'bound_by',
                    render: (b: Device['bound_by']) => b?.display_name ?? '—',
                  },
                  { title: t('devices.boundAt'), dataIndex: 'bound_at', render: (v: string | null) => (v ? c.date(v) : '—') },
                  {
                    title: '',
                    key: 'actions',
                    render: (_, r) =>
                      r.my_actions.includes('unbind') ? (
                        <Button size="small" onClick={() => setTransferring(r)} data-testid={`transfer-${r.sn}`}>
                          {t('devices.transfer')}
                        </Button>
                      ) : null,
                  },
                ]
          }
        />
        {list.hasNextPage && (
          <div style={{ textAlign: 'center', marginTop: 12 }}>
            <Button onClick={() => void list.fetchNextPage()} loading={list.isFetchingNextPage} data-testid="devices-more">
              {t('devices.loadMore')}
            </Button>
          </div>
        )}
      </Card>

      <MoveModal
        orgId={orgId}
        open={moving}
        sns={selected}
        onClose={() => setMoving(false)}
        onDone={(r) => {
          setMoving(false);
          report(r, 'devices.moved');
        }}
      />
      <TransferModal
        device={transferring}
        orgId={orgId}
        onClose={() => setTransferring(null)}
        onDone={() => {
          setTransferring(null);
          message.success(t('devices.transferred'));
          refresh();
        }}
      />
    </Space>
  );
}

/** Bulk move: pick the department the selected devices become visible to. */
function MoveModal({
  orgId,
  open,
  sns,
  onClose,
  onDone,
}: {
  orgId: string;
  open: boolean;
  sns: string[];
  onClose(): void;
  onDone(r: BulkResult[]): void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const depts = useDepartments(orgId);
  const [dept, setDept] = useState<string | undefined>();
  const move = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/orgs/{orgId}/devices/bulk-move', {
          params: { path: { orgId } },
          body: { sns, department_id: dept! },
        }),
      ),
    onSuccess: (r) => {
      setDept(undefined);
      onDone(r.results);
    },
  });
  return (
    <Modal
      open={open}
      title={t('devices.moveTitle', { n: sns.length })}
      okText={t('devices.move')}
      okButtonProps={withTestId('bulk-move-ok', { disabled: !dept, loading: move.isPending })}
      onOk={() => move.mutate()}
      onCancel={onClose}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t('devices.moveHint')}</Typography.Paragraph>
      <DepartmentSelect depts={depts.data ?? []} value={dept} onChange={(v) => setDept(v as string)} testId="move-department" />
      {move.error && <Alert type="error" showIcon style={{ marginTop: 12 }} message={c.err(move.error)} />}
    </Modal>
  );
}

/** Moves one device to another organisation: one the person administers (operators: any), or an id. */
function TransferModal({
  device,
  orgId,
  onClose,
  onDone,
}: {
  device: Device | null;
  orgId: string;
  onClose(): void;
  onDone(): void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const [form] = Form.useForm<{ how: 'pick' | 'id'; org?: string; org_id?: string }>();
  const how = Form.useWatch('how', form) ?? 'pick';
  const orgs = useQuery({
    queryKey: ['orgs'],
    enabled: device !== null,
    queryFn: async () => (await unwrap(api.GET('/api/v1/orgs'))).organisations ?? [],
  });
  const me = useMe();
  const targets = (orgs.data ?? []).filter(
    (o) => o.id !== orgId && (me.user.is_operator || o.role === 'super_admin' || o.role === 'device_admin'),
  );
  const transfer = useMutation({
    mutationFn: (to: string) =>
      unwrap(
        api.POST('/api/v1/devices/{sn}/transfer', {
          params: { path: { sn: device!.sn } },
          body: { owner: { type: 'org', id: to } },
        }),
      ),
    onSuccess: () => {
      form.resetFields();
      onDone();
    },
  });
  const submit = async () => {
    const v = await form.validateFields();
    transfer.mutate((v.how === 'id' ? v.org_id : v.org)!.trim());
  };
  return (
    <Modal
      open={device !== null}
      title={device ? t('devices.transferTitle', { sn: device.sn }) : ''}
      okText={t('devices.transfer')}
      okButtonProps={withTestId('transfer-ok', { loading: transfer.isPending })}
      onOk={() => void submit()}
      onCancel={() => {
        form.resetFields();
        transfer.reset();
        onClose();
      }}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t('devices.transferHint')}</Typography.Paragraph>
      <Form form={form} layout="vertical" initialValues={{ how: 'pick' }} preserve={false}>
        <Form.Item name="how">
          <Radio.Group
            options={[
              { value: 'pick', label: t('devices.transferPick') },
              { value: 'id', label: t('devices.transferById') },
            ]}
          />
        </Form.Item>
        {how === 'pick' ? (
          <Form.Item name="org" label={t('devices.targetOrg')} rules={[{ required: true, message: t('devices.targetRequired') }]}>
            <Select
              showSearch
              optionFilterProp="label"
              loading={orgs.isLoading}
              options={targets.map((o) => ({ value: o.id, label: o.name }))}
              notFoundContent={t('devices.noTargets')}
              data-testid="transfer-org"
            />
          </Form.Item>
        ) : (
          <Form.Item
            name="org_id"
            label={t('devices.targetOrgId')}
            rules={[{ required: true, message: t('devices.targetRequired') }]}
          >
            <Input data-testid="transfer-org-id" />
          </Form.Item>
        )}
      </Form>
      {transfer.error && <Alert type="error" showIcon message={c.err(transfer.error)} />}
    </Modal>
  );
}

/** A bulk result's error as an ApiError, so c.err words it in the UI language. */
function asError(e: { code: string; message: string }) {
  return new ApiError(0, e.code, e.message);
}

function search(q: ListQuery): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
