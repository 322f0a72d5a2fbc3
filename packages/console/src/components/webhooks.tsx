import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Card,
  Checkbox,
  Descriptions,
  Form,
  Grid,
  Input,
  Modal,
  Popconfirm,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd';
import { type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../api/client.js';
import { useI18n } from '../i18n/index.js';
import { withTestId } from './test-id.js';

const EVENTS = [
  'device.bound',
  'device.unbound',
  'device.activated',
  'device.online',
  'device.offline',
  'device.firmware_result',
  'device.error_report',
  'device.log_uploaded',
  'device.registered',
] as const;
type EventName = (typeof EVENTS)[number];

interface Webhook {
  id: string;
  url: string;
  events: EventName[] | null;
  created_at: number;
}

interface Attempt {
  at: number;
  http_status: number | null;
  errcode: number | null;
  error: string | null;
  duration_ms: number;
}

interface Delivery {
  id: string;
  target: { kind: string; id: string };
  event_type: string;
  sn: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number | null;
  created_at: number;
  last_http_status: number | null;
  last_error: string | null;
  redelivery_of: string | null;
  attempt_log: Attempt[];
}

const STATUS_COLOR = { pending: 'processing', delivered: 'success', failed: 'error' } as const;
/** Who owns the webhooks: an organisation (its super admins) or a vendor (issue 13). */
export type WebhookOwner = { kind: 'org' | 'vendor'; id: string };

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What a finished delivery came to, in the log's words: `HTTP 204`, `HTTP 500`, `timed out`, `errcode 1: …`. */
function resultText(d: Pick<Delivery, 'last_http_status' | 'last_error'>): string {
  if (d.last_error)
    return d.last_http_status && !d.last_error.startsWith('HTTP') ? `HTTP ${d.last_http_status} · ${d.last_error}` : d.last_error;
  return d.last_http_status ? `HTTP ${d.last_http_status}` : '—';
}

/**
 * "Send test event" for a webhook or a callback URL: `send` queues the test delivery (the server answers
 * at once with it, pending); the button then follows that delivery until it is delivered or failed and
 * shows the outcome beside itself. `onSettled` refreshes the delivery log the attempt also appears in.
 */
export function TestEventButton({
  send,
  onSettled,
  testId,
  vertical,
}: {
  send: () => Promise<{ delivery?: { id: string } }>;
  onSettled?: () => void;
  testId: string;
  /** The outcome under the button (a table cell) instead of beside it. */
  vertical?: boolean;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const [id, setId] = useState<string | null>(null);
  const start = useMutation({
    mutationFn: send,
    onMutate: () => setId(null),
    onSuccess: (r) => setId(r.delivery?.id ?? null),
  });
  const follow = useQuery({
    queryKey: ['deliveries', id],
    enabled: id !== null,
    queryFn: async () => {
      const d = (await unwrap(api.GET('/api/v1/deliveries/{id}', { params: { path: { id: id! } } }))).delivery as Delivery;
      if (d.status !== 'pending') onSettled?.();
      return d;
    },
    // One attempt within the URL's deadline (at most 5 s) once the outbox picks it up; give up looking after a minute.
    refetchInterval: (q) => ((q.state.data && q.state.data.status !== 'pending') || q.state.dataUpdateCount > 60 ? false : 1000),
  });
  const done = follow.data && follow.data.status !== 'pending' ? follow.data : null;
  let outcome: ReactNode = null;
  if (start.error) outcome = <Typography.Text type="danger">{c.err(start.error)}</Typography.Text>;
  else if (done)
    outcome = (
      <Tag color={STATUS_COLOR[done.status]}>
        {t(done.status === 'delivered' ? 'webhooks.testDelivered' : 'webhooks.testFailed', { result: resultText(done) })}
      </Tag>
    );
  else if (start.isPending || id) outcome = <Tag color="processing">{t('webhooks.testSending')}</Tag>;
  return (
    <Space size="small" wrap direction={vertical ? 'vertical' : 'horizontal'}>
      <Button size="small" loading={start.isPending} onClick={() => start.mutate()} data-testid={testId}>
        {t('webhooks.test')}
      </Button>
      {outcome && (
        <span data-testid={`${testId}-result`} data-status={done?.status ?? (start.error ? 'error' : 'pending')}>
          {outcome}
        </span>
      )}
    </Space>
  );
}

/**
 * The signed webhooks of an organisation or a vendor and their delivery log (shared by
 * /orgs/:orgId/webhooks and /vendors/:vendorId/integrations). Texts are the `org` namespace's `webhooks.*`;
 * `hint` replaces the organisation's explanation.
 */
export function Webhooks({ owner, hint }: { owner: WebhookOwner; hint?: string }) {
  const key = [owner.kind === 'org' ? 'orgs' : 'vendors', owner.id] as const;
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const phone = !Grid.useBreakpoint().md;
  const events = (e: string[] | null) => (e ? e.map((x) => <Tag key={x}>{x}</Tag>) : <Tag>{t('webhooks.allEvents')}</Tag>);
  const [adding, setAdding] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const hooks = useQuery({
    queryKey: [...key, 'webhooks'],
    queryFn: async () =>
      ((owner.kind === 'org'
        ? await unwrap(api.GET('/api/v1/organisations/{orgId}/webhooks', { params: { path: { orgId: owner.id } } }))
        : await unwrap(api.GET('/api/v1/vendors/{vendorId}/webhooks', { params: { path: { vendorId: owner.id } } }))
      ).webhooks ?? []) as Webhook[],
  });
  const remove = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/webhooks/{id}', { params: { path: { id } } })),
    onSuccess: () => {
      message.success(t('webhooks.removed'));
      void qc.invalidateQueries({ queryKey: [...key, 'webhooks'] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={t('webhooks.title')}
        extra={
          <Button type="primary" onClick={() => setAdding(true)} data-testid="webhook-add">
            {t('webhooks.add')}
          </Button>
        }
      >
        <Typography.Paragraph type="secondary">{hint ?? t('webhooks.hint')}</Typography.Paragraph>
        {hooks.error && <Alert type="error" showIcon message={c.err(hooks.error)} />}
        <Table<Webhook>
          rowKey="id"
          size="small"
          loading={hooks.isLoading}
          dataSource={hooks.data}
          pagination={false}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: t('webhooks.none') }}
          data-testid="webhooks-table"
          columns={[
            {
              title: t('webhooks.url'),
              dataIndex: 'url',
              render: (u: string, w) => (
                <>
                  <Typography.Text style={{ wordBreak: 'break-all' }}>{u}</Typography.Text>
                  {/* On a phone the other columns follow the URL. */}
                  {phone && (
                    <div>
                      {events(w.events)} <Typography.Text type="secondary">{c.date(iso(w.created_at))}</Typography.Text>
                    </div>
                  )}
                </>
              ),
            },
            ...(phone
              ? []
              : [
                  { title: t('webhooks.events'), dataIndex: 'events', render: (e: string[] | null) => events(e) },
                  { title: t('webhooks.created'), dataIndex: 'created_at', render: (v: number) => c.date(iso(v)) },
                ]),
            {
              title: '',
              key: 'test',
              render: (_, w) => (
                <TestEventButton
                  vertical
                  testId="webhook-test"
                  send={() => unwrap(api.POST('/api/v1/webhooks/{id}/test', { params: { path: { id: w.id } } }))}
                  onSettled={() => void qc.invalidateQueries({ queryKey: [...key, 'deliveries'] })}
                />
              ),
            },
            {
              title: '',
              key: 'remove',
              render: (_, w) => (
                <Popconfirm
                  title={t('webhooks.removeConfirm')}
                  okText={t('webhooks.remove')}
                  okButtonProps={withTestId('webhook-remove-ok', { danger: true })}
                  onConfirm={() => remove.mutate(w.id)}
                >
                  <Button size="small" danger data-testid="webhook-remove">
                    {t('webhooks.remove')}
                  </Button>
                </Popconfirm>
              ),
            },
          ]}
        />
      </Card>
      <Deliveries owner={owner} />
      {adding && (
        <AddWebhook
          owner={owner}
          onClose={() => setAdding(false)}
          onDone={(s) => {
            setAdding(false);
            setSecret(s);
            void qc.invalidateQueries({ queryKey: [...key, 'webhooks'] });
          }}
        />
      )}
      {/* Unmounted once closed: the secret is nowhere in the page afterwards. */}
      {secret !== null && (
        <Modal
          open
          title={t('webhooks.secretTitle')}
          onCancel={() => setSecret(null)}
          closable={false}
          maskClosable={false}
          footer={[
            <Button key="ok" type="primary" onClick={() => setSecret(null)} data-testid="webhook-secret-done">
              {c.t('common.done')}
            </Button>,
          ]}
        >
          <Alert type="warning" showIcon message={t('webhooks.secretOnce')} style={{ marginBottom: 12 }} />
          <Typography.Paragraph copyable={{ text: secret ?? '' }} code data-testid="webhook-secret">
            {secret}
          </Typography.Paragraph>
        </Modal>
      )}
    </Space>
  );
}

function AddWebhook({ owner, onClose, onDone }: { owner: WebhookOwner; onClose: () => void; onDone: (secret: string) => void }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const [form] = Form.useForm<{ url: string; events: EventName[] }>();
  const add = useMutation({
    mutationFn: (v: { url: string; events: EventName[] }) => {
      const body = { url: v.url.trim(), events: v.events?.length ? v.events : null };
      return unwrap(
        owner.kind === 'org'
          ? api.POST('/api/v1/organisations/{orgId}/webhooks', { params: { path: { orgId: owner.id } }, body })
          : api.POST('/api/v1/vendors/{vendorId}/webhooks', { params: { path: { vendorId: owner.id } }, body }),
      );
    },
    onSuccess: (r) => onDone(r.secret),
  });
  return (
    <Modal
      open
      title={t('webhooks.add')}
      onCancel={onClose}
      okText={t('webhooks.add')}
      okButtonProps={withTestId('webhook-save', { loading: add.isPending })}
      onOk={() => form.submit()}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" initialValues={{ events: [] }} onFinish={(v) => add.mutate(v)}>
        <Form.Item name="url" label={t('webhooks.url')} rules={[{ required: true, type: 'url', max: 2048 }]}>
          <Input placeholder="https://example.com/bindery" data-testid="webhook-url" />
        </Form.Item>
        <Form.Item name="events" label={t('webhooks.events')} extra={t('webhooks.eventsHint')}>
          <Checkbox.Group options={EVENTS.map((e) => ({ value: e, label: e }))} />
        </Form.Item>
        {add.error && <Alert type="error" showIcon message={c.err(add.error)} data-testid="webhook-error" />}
      </Form>
    </Modal>
  );
}

function Deliveries({ owner }: { owner: WebhookOwner }) {
  const key = [owner.kind === 'org' ? 'orgs' : 'vendors', owner.id, 'deliveries'] as const;
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [status, setStatus] = useState<'' | Delivery['status']>('');
  const log = useInfiniteQuery({
    queryKey: [...key, status],
    initialPageParam: '',
    queryFn: async ({ pageParam }) => {
      const query = { ...(status ? { status } : {}), ...(pageParam ? { cursor: pageParam } : {}), limit: 50 };
      const r = await unwrap(
        owner.kind === 'org'
          ? api.GET('/api/v1/organisations/{orgId}/deliveries', { params: { path: { orgId: owner.id }, query } })
          : api.GET('/api/v1/vendors/{vendorId}/deliveries', { params: { path: { vendorId: owner.id }, query } }),
      );
      return { deliveries: (r.deliveries ?? []) as Delivery[], next: r.next_cursor ?? null };
    },
    getNextPageParam: (last) => last.next ?? undefined,
  });
  const redeliver = useMutation({
    mutationFn: (id: string) => unwrap(api.POST('/api/v1/deliveries/{id}/redeliver', { params: { path: { id } } })),
    onSuccess: () => {
      message.success(t('webhooks.redelivered'));
      void qc.invalidateQueries({ queryKey: [...key] });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = log.data?.pages.flatMap((p) => p.deliveries) ?? [];
  const phone = !Grid.useBreakpoint().md;
  return (
    <Card
      title={t('webhooks.log')}
      extra={
        <Select
          value={status}
          onChange={setStatus}
          style={{ width: 150 }}
          data-testid="delivery-status"
          options={[
            { value: '', label: t('webhooks.status.all') },
            { value: 'pending', label: t('webhooks.status.pending') },
            { value: 'delivered', label: t('webhooks.status.delivered') },
            { value: 'failed', label: t('webhooks.status.failed') },
          ]}
        />
      }
    >
      {log.error && <Alert type="error" showIcon message={c.err(log.error)} />}
      <Table<Delivery>
        rowKey="id"
        size="small"
        loading={log.isLoading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('webhooks.noDeliveries') }}
        data-testid="deliveries-table"
        expandable={{
          expandedRowRender: (d) => (
            <Descriptions
              size="small"
              column={1}
              items={d.attempt_log.map((a, i) => ({
                key: String(i),
                label: c.date(iso(a.at)),
                children: `${a.http_status ?? '—'}${a.error ? ` · ${a.error}` : ''} · ${a.duration_ms} ms`,
              }))}
            />
          ),
          rowExpandable: (d) => d.attempt_log.length > 0,
        }}
        columns={[
          {
            title: t('webhooks.event'),
            dataIndex: 'event_type',
            render: (e: string, d) => (
              <>
                <div>{e}</div>
                <Typography.Text type="secondary">
                  {d.sn ?? '—'} · {c.date(iso(d.created_at))}
                </Typography.Text>
                {phone && (
                  <div>
                    <Tag color={STATUS_COLOR[d.status]}>{t(`webhooks.status.${d.status}`)}</Tag>
                    {t('webhooks.attempts')}: {d.attempts}
                  </div>
                )}
              </>
            ),
          },
          ...(phone
            ? []
            : [
                {
                  title: t('webhooks.statusLabel'),
                  dataIndex: 'status',
                  render: (s: Delivery['status']) => <Tag color={STATUS_COLOR[s]}>{t(`webhooks.status.${s}`)}</Tag>,
                },
                { title: t('webhooks.attempts'), dataIndex: 'attempts' },
                {
                  title: t('webhooks.lastResult'),
                  key: 'last',
                  render: (_: unknown, d: Delivery) =>
                    d.last_error ? `${d.last_http_status ?? ''} ${d.last_error}`.trim() : (d.last_http_status ?? '—'),
                },
              ]),
          {
            title: '',
            key: 'redeliver',
            render: (_, d) => (
              <Button
                size="small"
                disabled={d.status === 'pending'}
                loading={redeliver.isPending && redeliver.variables === d.id}
                onClick={() => redeliver.mutate(d.id)}
                data-testid="delivery-redeliver"
              >
                {t('webhooks.redeliver')}
              </Button>
            ),
          },
        ]}
      />
      {log.hasNextPage && (
        <Button style={{ marginTop: 12 }} onClick={() => log.fetchNextPage()} loading={log.isFetchingNextPage}>
          {c.t('common.more')}
        </Button>
      )}
    </Card>
  );
}
