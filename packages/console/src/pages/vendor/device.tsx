import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Descriptions, Empty, QRCode, Select, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { DeviceCampaigns } from './device-campaigns.js';
import { useModels } from './models.js';

/** The server's views (these responses carry no schema, so the generated types do not know them). */
interface Device {
  sn: string;
  model_id: string;
  batch_id: string | null;
  hw_code: string;
  state: string;
  registered_at: string;
  activated_at: string | null;
  online: boolean;
  last_seen_at: string | null;
  firmware_version: string | null;
  bound: boolean;
  owner_type: string | null;
  device_key: string | null;
  camera_sn: string | null;
}
interface Command {
  id: string;
  cmd: string;
  status: 'pending' | 'delivered' | 'expired' | 'failed';
  created_by: string | null;
  created_at: string;
  expires_at: string;
  delivered_at: string | null;
  failed_at: string | null;
  /** The device's errcode (P-PUSH-7); null when the connection closed before the command was written. */
  fail_code: number | null;
  fail_reason: string | null;
}
interface Inspection {
  result: string;
  inspect_time: string;
  app_version: string;
  wired_mac: string;
  wireless_mac: string;
  bluetooth_mac: string;
  imei: string;
  errors: string[];
  warnings: string[];
}

const CMDS = ['restart', 'fetch_log', 'update_firmware'] as const;
const CMD_STATUS = { pending: 'processing', delivered: 'success', expired: 'default', failed: 'error' } as const;

/**
 * /vendors/:vendorId/devices/:sn — one device for its vendor: facts, commands (send and history), error
 * reports, uploaded logs, inspection record, the verification code (audited, behind a button), a static QR.
 */
export function Component() {
  const { vendorId = '', sn = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const path = { params: { path: { sn } } };
  const device = useQuery({
    queryKey: ['devices', sn],
    queryFn: async () => ((await unwrap(api.GET('/api/v1/devices/{sn}', path))) as unknown as { device: Device }).device,
  });
  const d = device.data;
  const models = useModels(vendorId);
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Link to={`/vendors/${vendorId}/devices`}>← {t('device.back')}</Link>
      <Card title={<span data-testid="device-title">{sn}</span>} loading={device.isLoading}>
        {device.error && <Alert type="error" showIcon message={c.err(device.error)} />}
        {d && (
          <Descriptions
            size="small"
            column={{ xs: 1, md: 2 }}
            items={[
              { key: 'state', label: t('device.state'), children: <Tag>{t(`devices.state.${d.state}`, d.state)}</Tag> },
              {
                key: 'online',
                label: t('device.online'),
                children: d.online ? t('device.yes') : `${t('device.no')}${d.last_seen_at ? ` · ${c.date(d.last_seen_at)}` : ''}`,
              },
              {
                key: 'model',
                label: t('device.model'),
                children: models.data?.find((m) => m.model_id === d.model_id)?.name ?? d.model_id,
              },
              { key: 'hw', label: 'hw_code', children: <Typography.Text code>{d.hw_code}</Typography.Text> },
              { key: 'fw', label: t('device.firmware'), children: d.firmware_version ?? '—' },
              { key: 'owner', label: t('device.owner'), children: d.bound ? (d.owner_type ?? '—') : t('device.unbound') },
              { key: 'reg', label: t('device.registered'), children: c.date(d.registered_at) },
              { key: 'act', label: t('device.activated'), children: d.activated_at ? c.date(d.activated_at) : '—' },
              { key: 'key', label: 'DeviceKey / IMEI', children: d.device_key ?? '—' },
              { key: 'batch', label: t('device.batch'), children: d.batch_id ?? '—' },
            ]}
          />
        )}
        {d && (
          <Space wrap style={{ marginTop: 12 }}>
            <VerifCode sn={sn} />
            {d.bound && <LoginQr sn={sn} />}
          </Space>
        )}
      </Card>
      <Commands sn={sn} />
      <DeviceCampaigns vendorId={vendorId} sn={sn} />
      <ErrorReports sn={sn} />
      <Logs sn={sn} />
      <InspectionRecord sn={sn} />
    </Space>
  );
}

function VerifCode({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  // A mutation, not a query: each look is audited, so it happens only on the click.
  const show = useMutation({
    mutationFn: async () =>
      (
        (await unwrap(api.GET('/api/v1/devices/{sn}/verif-code', { params: { path: { sn } } }))) as unknown as {
          verif_code: string;
        }
      ).verif_code,
  });
  if (show.data)
    return (
      <Typography.Text copyable code data-testid="device-verif-code">
        {show.data}
      </Typography.Text>
    );
  return (
    <>
      <Button onClick={() => show.mutate()} loading={show.isPending} data-testid="device-verif-show">
        {t('device.verifShow')}
      </Button>
      {show.error && <Typography.Text type="danger">{c.err(show.error)}</Typography.Text>}
    </>
  );
}

function LoginQr({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const issue = useMutation({
    mutationFn: async () =>
      (await unwrap(api.POST('/api/v1/devices/{sn}/login-codes', { params: { path: { sn } }, body: {} }))) as unknown as {
        url: string;
      },
  });
  return (
    <Space direction="vertical">
      <Button onClick={() => issue.mutate()} loading={issue.isPending} data-testid="device-login-qr">
        {t('device.loginQr')}
      </Button>
      {issue.error && <Typography.Text type="danger">{c.err(issue.error)}</Typography.Text>}
      {issue.data && (
        <>
          <QRCode value={issue.data.url} size={160} />
          <Typography.Text copyable style={{ wordBreak: 'break-all' }}>
            {issue.data.url}
          </Typography.Text>
        </>
      )}
    </Space>
  );
}

function Commands({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [cmd, setCmd] = useState<(typeof CMDS)[number]>('restart');
  const list = useQuery({
    queryKey: ['devices', sn, 'commands'],
    queryFn: async () =>
      (
        (await unwrap(
          api.GET('/api/v1/devices/{sn}/commands', { params: { path: { sn }, query: { limit: 50 } } }),
        )) as unknown as {
          commands: Command[];
        }
      ).commands,
  });
  const send = useMutation({
    mutationFn: async () =>
      (await unwrap(api.POST('/api/v1/devices/{sn}/commands', { params: { path: { sn } }, body: { cmd } }))) as unknown as {
        outcome: string;
      },
    onSuccess: (r) => {
      message.success(t(`device.outcome.${r.outcome}`));
      void qc.invalidateQueries({ queryKey: ['devices', sn, 'commands'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  return (
    <Card
      title={t('device.commands')}
      extra={
        <Space wrap>
          <Select
            value={cmd}
            onChange={setCmd}
            style={{ width: 170 }}
            data-testid="device-cmd"
            options={CMDS.map((x) => ({ value: x, label: t(`device.cmd.${x}`) }))}
          />
          <Button type="primary" onClick={() => send.mutate()} loading={send.isPending} data-testid="device-cmd-send">
            {t('device.send')}
          </Button>
        </Space>
      }
    >
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} />}
      <Table<Command>
        rowKey="id"
        size="small"
        loading={list.isLoading}
        dataSource={list.data}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('device.noCommands') }}
        data-testid="device-commands"
        columns={[
          { title: t('device.command'), dataIndex: 'cmd' },
          {
            title: t('device.status'),
            dataIndex: 'status',
            render: (s: Command['status'], r) => (
              <Space direction="vertical" size={0}>
                <Tag color={CMD_STATUS[s]} data-testid={`device-cmd-${s}`}>
                  {t(`device.cmdStatus.${s}`)}
                </Tag>
                {s === 'failed' && (
                  <Typography.Text type="danger" data-testid="device-cmd-fail-reason">
                    {r.fail_code === null
                      ? t('device.cmdFail.unsent')
                      : t('device.cmdFail.device', { code: r.fail_code, reason: r.fail_reason ?? '' })}
                  </Typography.Text>
                )}
              </Space>
            ),
          },
          { title: t('device.sent'), dataIndex: 'created_at', render: (v: string) => c.date(v) },
          {
            title: t('device.delivered'),
            dataIndex: 'delivered_at',
            render: (v: string | null, r) => (v ? c.date(v) : `${t('device.expires')} ${c.date(r.expires_at)}`),
          },
        ]}
      />
    </Card>
  );
}

function ErrorReports({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const list = useQuery({
    queryKey: ['devices', sn, 'error-reports'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/devices/{sn}/error-reports', { params: { path: { sn }, query: { limit: 100 } } })))
        .error_reports ?? [],
  });
  return (
    <Card title={t('device.errors')}>
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} />}
      <Table
        rowKey="id"
        size="small"
        loading={list.isLoading}
        dataSource={list.data}
        pagination={(list.data?.length ?? 0) > 20 ? { pageSize: 20 } : false}
        locale={{ emptyText: t('device.noErrors') }}
        data-testid="device-errors"
        columns={[
          { title: t('device.when'), dataIndex: 'reported_at', render: (v: string) => c.date(v) },
          { title: 'errcode', dataIndex: 'errcode' },
          { title: 'errmsg', dataIndex: 'errmsg' },
        ]}
      />
    </Card>
  );
}

function Logs({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const list = useQuery({
    queryKey: ['devices', sn, 'logs'],
    queryFn: async () => (await unwrap(api.GET('/api/v1/devices/{sn}/logs', { params: { path: { sn } } }))).logs ?? [],
  });
  return (
    <Card title={t('device.logs')}>
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} />}
      <Table
        rowKey="id"
        size="small"
        loading={list.isLoading}
        dataSource={list.data}
        pagination={false}
        locale={{ emptyText: t('device.noLogs') }}
        data-testid="device-logs"
        columns={[
          { title: t('device.when'), dataIndex: 'uploaded_at', render: (v: string) => c.date(v) },
          { title: t('device.size'), dataIndex: 'size', render: (n: number) => `${Math.ceil(n / 1024)} KB` },
          {
            title: '',
            key: 'dl',
            render: (_: unknown, l: { id?: string }) => (
              <a href={`/api/v1/devices/${encodeURIComponent(sn)}/logs/${encodeURIComponent(l.id ?? '')}`} download>
                {t('device.download')}
              </a>
            ),
          },
        ]}
      />
    </Card>
  );
}

function InspectionRecord({ sn }: { sn: string }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const rec = useQuery({
    queryKey: ['inspections', sn],
    queryFn: async () => {
      try {
        return (
          (await unwrap(api.GET('/api/v1/inspections/{sn}', { params: { path: { sn } } }))) as unknown as {
            inspection: Inspection;
          }
        ).inspection;
      } catch (e) {
        if (e instanceof ApiError && e.code === 'NOT_FOUND') return null; // no record yet
        throw e;
      }
    },
  });
  const r = rec.data;
  return (
    <Card title={t('device.inspection')} loading={rec.isLoading}>
      {rec.error && <Alert type="error" showIcon message={c.err(rec.error)} />}
      {r === null && <Empty description={t('device.noInspection')} />}
      {r && (
        <Descriptions
          size="small"
          column={{ xs: 1, md: 2 }}
          items={[
            {
              key: 'result',
              label: t('device.result'),
              children: (
                <Tag color={r.result === 'SUCCESS' ? 'success' : r.result === 'WARN' ? 'warning' : 'error'}>{r.result}</Tag>
              ),
            },
            { key: 'time', label: t('device.when'), children: r.inspect_time },
            { key: 'app', label: 'app_version', children: r.app_version || '—' },
            { key: 'imei', label: 'IMEI', children: r.imei || '—' },
            {
              key: 'mac',
              label: 'MAC',
              children: [r.wired_mac, r.wireless_mac, r.bluetooth_mac].filter(Boolean).join(' · ') || '—',
            },
            { key: 'err', label: t('device.inspectionErrors'), children: [...r.errors, ...r.warnings].join(' · ') || '—' },
          ]}
        />
      )}
    </Card>
  );
}
