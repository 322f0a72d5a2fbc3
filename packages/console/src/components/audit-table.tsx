import { useInfiniteQuery } from '@tanstack/react-query';
import { Alert, AutoComplete, Button, Card, DatePicker, Grid, Input, Space, Table, Tooltip, Typography } from 'antd';
import { type HTMLAttributes, useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../api/client.js';
import type { paths } from '../api/schema.js';
import { useI18n } from '../i18n/index.js';

type Query = NonNullable<paths['/api/v1/audit']['get']['parameters']['query']>;
type Entry = paths['/api/v1/audit']['get']['responses'][200]['content']['application/json']['entries'][number];

/** Actions with a label of their own (`audit.action.<action>` in the org namespace); others show raw. */
export const KNOWN_ACTIONS = [
  'device.bind',
  'device.bind.operator',
  'device.unbind',
  'device.transfer',
  'device.transfer_in',
  'device.move',
  'device.rename',
  'device.share',
  'device.unshare',
  'device.user_scan',
  'device.firmware_result',
  'device.command.reboot',
  'device.command.restart',
  'device.command.fetch_log',
  'device.command.update_firmware',
  'device.command.fetch_device_status',
  'invite.create',
  'invite.revoke',
  'invite.accept',
  'member.add',
  'member.update',
  'member.remove',
  'department.create',
  'department.update',
  'department.delete',
  'org.create',
  'org.settings',
  'application.create',
  'application.admins',
  'webhook.create',
  'webhook.delete',
  'webhook.test',
  'callback.redeliver',
  'user.create',
  'user.password',
  'session.create',
] as const;

/** Prefixes offered in the action filter (any action or prefix may be typed). */
const ACTION_PREFIXES = ['device.', 'member.', 'invite.', 'department.', 'org.', 'webhook.', 'application.'];

interface Filters {
  actor?: string;
  action?: string;
  sn?: string;
  from?: string;
  to?: string;
}

const PAGE = 50;

/**
 * The audit log as a table: an organisation's (`orgId`) or the whole instance's. Filters by who, action
 * (or its prefix), device SN and dates; "load more" pages back in time; the csv link carries the filters.
 */
export function AuditTable({ orgId }: { orgId?: string }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const [filters, setFilters] = useState<Filters>({});
  const [actionText, setActionText] = useState('');
  const query: Query = useMemo(() => {
    const q: Query = {};
    for (const [k, v] of Object.entries(filters)) if (v) q[k as keyof Filters] = v;
    return q;
  }, [filters]);
  const list = useInfiniteQuery({
    queryKey: orgId ? ['orgs', orgId, 'audit', query] : ['audit', query],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => {
      const q = { ...query, limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}) };
      return unwrap(
        orgId
          ? api.GET('/api/v1/orgs/{orgId}/audit', { params: { path: { orgId }, query: q } })
          : api.GET('/api/v1/audit', { params: { query: q } }),
      );
    },
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const entries = useMemo(() => (list.data?.pages ?? []).flatMap((p) => p.entries), [list.data]);
  const set = (patch: Partial<Filters>) => setFilters((f) => ({ ...f, ...patch }));
  const actionLabel = (a: string) => t(`audit.action.${a}`, { defaultValue: a });
  const phone = !Grid.useBreakpoint().md;
  const when = (v: string) =>
    // To the second: records of one action follow each other closely.
    new Date(v).toLocaleString(c.lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
  const who = (a: Entry['actor']) =>
    a.display_name ? (
      <Tooltip title={a.username ? `@${a.username}` : a.label}>{a.display_name}</Tooltip>
    ) : (
      <Typography.Text type="secondary">{a.label}</Typography.Text>
    );
  // A phone gets one column per record: what, to what, who, when and from where.
  const phoneColumns = [
    {
      title: t('audit.action'),
      key: 'record',
      render: (_: unknown, e: Entry) => (
        <Space direction="vertical" size={2}>
          <Typography.Text strong data-testid="audit-action-label">
            {actionLabel(e.action)}
          </Typography.Text>
          <Typography.Text code>{e.subject}</Typography.Text>
          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
            {who(e.actor)} · {when(e.at)}
            {e.ip ? ` · ${e.ip}` : ''}
          </Typography.Text>
        </Space>
      ),
    },
  ];
  const csvHref = `${orgId ? `/api/v1/orgs/${encodeURIComponent(orgId)}/audit.csv` : '/api/v1/audit.csv'}${search(query)}`;

  return (
    <Card
      title={t('audit.title')}
      extra={
        <Button href={csvHref} download data-testid="audit-csv">
          {t('audit.exportCsv')}
        </Button>
      }
    >
      <Space
        wrap
        direction={phone ? 'vertical' : 'horizontal'}
        style={{ marginBottom: 12, ...(phone ? { width: '100%' } : {}) }}
        data-testid="audit-filters"
      >
        <Input.Search
          allowClear
          placeholder={t('audit.actor')}
          style={{ width: phone ? '100%' : 200 }}
          onSearch={(v) => set({ actor: v.trim() || undefined })}
          data-testid="audit-actor"
        />
        <AutoComplete
          allowClear
          style={{ width: phone ? '100%' : 220 }}
          value={actionText}
          placeholder={t('audit.actionFilter')}
          options={[...ACTION_PREFIXES, ...KNOWN_ACTIONS]
            .filter((a) => !actionText || a.startsWith(actionText) || actionLabel(a).includes(actionText))
            .map((a) => ({ value: a, label: a.endsWith('.') ? `${a}*` : `${actionLabel(a)} (${a})` }))}
          onChange={(v: string) => {
            setActionText(v ?? '');
            if (!v) set({ action: undefined });
          }}
          onSelect={(v: string) => set({ action: v })}
          onKeyDown={(e) => {
            if (e.key === 'Enter') set({ action: actionText.trim() || undefined });
          }}
          data-testid="audit-action"
        />
        <Input.Search
          allowClear
          placeholder={t('audit.sn')}
          style={{ width: phone ? '100%' : 180 }}
          onSearch={(v) => set({ sn: v.trim() || undefined })}
          data-testid="audit-sn"
        />
        <DatePicker.RangePicker
          allowEmpty={[true, true]}
          onChange={(_, s) => set({ from: s?.[0] || undefined, to: s?.[1] || undefined })}
          data-testid="audit-dates"
        />
      </Space>
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} style={{ marginBottom: 12 }} />}
      <Table<Entry>
        rowKey="id"
        size="small"
        loading={list.isLoading}
        dataSource={entries}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('audit.empty') }}
        data-testid="audit-table"
        onRow={(e) => ({ 'data-testid': `audit-row-${e.id}`, 'data-action': e.action }) as HTMLAttributes<HTMLElement>}
        columns={
          phone
            ? phoneColumns
            : [
                { title: t('audit.time'), dataIndex: 'at', render: when },
                { title: t('audit.who'), dataIndex: 'actor', render: who },
                {
                  title: t('audit.action'),
                  dataIndex: 'action',
                  render: (a: string) => (
                    <Tooltip title={a}>
                      <span data-testid="audit-action-label">{actionLabel(a)}</span>
                    </Tooltip>
                  ),
                },
                {
                  title: t('audit.subject'),
                  dataIndex: 'subject',
                  render: (s: string) => <Typography.Text code>{s}</Typography.Text>,
                },
                { title: t('audit.address'), dataIndex: 'ip', render: (v: string | null) => v ?? '—' },
                {
                  title: t('audit.details'),
                  dataIndex: 'data',
                  render: (d: Entry['data']) => {
                    if (!d) return '—';
                    const s = JSON.stringify(d);
                    return (
                      <Typography.Text
                        type="secondary"
                        style={{ maxWidth: 280, display: 'inline-block' }}
                        ellipsis={{
                          tooltip: <pre style={{ margin: 0, whiteSpace: 'pre-wrap' }}>{JSON.stringify(d, null, 2)}</pre>,
                        }}
                      >
                        {s}
                      </Typography.Text>
                    );
                  },
                },
              ]
        }
      />
      {list.hasNextPage && (
        <div style={{ textAlign: 'center', marginTop: 12 }}>
          <Button onClick={() => void list.fetchNextPage()} loading={list.isFetchingNextPage} data-testid="audit-more">
            {t('audit.loadMore')}
          </Button>
        </div>
      )}
    </Card>
  );
}

function search(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
