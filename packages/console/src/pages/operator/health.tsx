import { useQuery } from '@tanstack/react-query';
import { Alert, Card, Col, Descriptions, Row, Space, Statistic, Table, Tag, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import type { paths } from '../../api/schema.js';
import { useI18n } from '../../i18n/index.js';

type Health = paths['/api/v1/instance/health']['get']['responses']['200']['content']['application/json'];
type NodeRow = Health['nodes'][number];

/** How often the page asks again: the processes' own reports are at most ~10 s old anyway. */
const REFRESH_MS = 10_000;

/** /operator — instance health: each dependency, every process with its devices, the queues, the version. */
export function Component() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const health = useQuery({
    queryKey: ['/api/v1/instance/health'],
    queryFn: () => unwrap(api.GET('/api/v1/instance/health')),
    refetchInterval: REFRESH_MS,
  });
  const h = health.data;
  if (health.error && !h) return <Alert type="error" showIcon message={c.err(health.error)} data-testid="health-error" />;
  if (!h) return <Card loading />;
  const uptime = formatUptime(h.uptime_sec, t);
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }} data-testid="health">
      {/* The warnings are the shell's banner (components/setup-banner.tsx), on every page. */}
      <Card
        title={
          <Space wrap>
            {t('health.title')}
            <Tag color={h.status === 'ok' ? 'green' : 'red'} data-testid="health-status">
              {t(`health.status.${h.status}`)}
            </Tag>
          </Space>
        }
      >
        {health.error && <Alert type="error" showIcon message={c.err(health.error)} style={{ marginBottom: 12 }} />}
        <Descriptions size="small" column={{ xs: 1, sm: 2, lg: 3 }}>
          <Descriptions.Item label={t('health.version')}>
            <span data-testid="health-version">{h.version}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('health.node')}>{h.node_id}</Descriptions.Item>
          <Descriptions.Item label={t('health.uptime')}>{uptime}</Descriptions.Item>
          <Descriptions.Item label={t('health.publicUrl')}>
            <Typography.Text code style={{ wordBreak: 'break-all' }}>
              {h.public_url}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('health.started')}>{c.date(h.started_at)}</Descriptions.Item>
        </Descriptions>
        <Typography.Text type="secondary" data-testid="health-updated">
          {t('health.updated', { time: new Date(health.dataUpdatedAt).toLocaleTimeString(c.lang === 'zh' ? 'zh-CN' : 'en-GB') })}
        </Typography.Text>
      </Card>

      <Row gutter={[16, 16]}>
        {h.dependencies.map((d) => (
          <Col key={d.name} xs={24} sm={12} lg={8}>
            <Card size="small" data-testid={`dependency-${d.name}`}>
              <Space direction="vertical" size={4} style={{ width: '100%' }}>
                <Space style={{ justifyContent: 'space-between', width: '100%' }}>
                  <Typography.Text strong>{t(`health.dep.${d.name}`)}</Typography.Text>
                  <Tag color={d.ok ? 'green' : 'red'}>{d.ok ? t('health.ok') : t('health.down')}</Tag>
                </Space>
                <Typography.Text type="secondary">
                  {d.kind} · {t('health.latency', { ms: d.latency_ms.toFixed(d.latency_ms < 10 ? 2 : 0) })}
                </Typography.Text>
                {d.error && <Typography.Text type="danger">{d.error}</Typography.Text>}
              </Space>
            </Card>
          </Col>
        ))}
      </Row>

      <Card title={t('health.queues')}>
        <Row gutter={[16, 16]}>
          {(
            [
              ['callbacks_pending', 'health.q.callbacksPending'],
              ['callbacks_failed_24h', 'health.q.callbacksFailed'],
              ['commands_pending', 'health.q.commandsPending'],
              ['batches_generating', 'health.q.batches'],
              ['label_zips', 'health.q.zips'],
            ] as const
          ).map(([k, label]) => (
            <Col key={k} xs={12} sm={8} lg={4}>
              <Statistic
                title={t(label)}
                value={h.queues[k]}
                valueStyle={k === 'callbacks_failed_24h' && h.queues[k] > 0 ? { color: '#cf1322' } : undefined}
                data-testid={`queue-${k}`}
              />
            </Col>
          ))}
        </Row>
      </Card>

      <Card
        title={
          <Space wrap>
            {t('health.nodes')}
            <Typography.Text type="secondary" style={{ fontWeight: 'normal' }} data-testid="health-devices">
              {t('health.devicesTotal', { n: h.devices_connected })}
            </Typography.Text>
          </Space>
        }
      >
        {h.nodes_error && (
          <Alert
            type="warning"
            showIcon
            message={t('health.nodesError', { error: h.nodes_error })}
            style={{ marginBottom: 12 }}
          />
        )}
        <Table<NodeRow>
          rowKey="node_id"
          size="small"
          pagination={false}
          dataSource={h.nodes}
          scroll={{ x: 'max-content' }}
          data-testid="health-nodes"
          columns={[
            {
              title: t('health.node'),
              key: 'node',
              render: (_, n) => (
                <Space size={4} wrap>
                  <Typography.Text code>{n.node_id}</Typography.Text>
                  {n.this_process && <Tag color="blue">{t('health.thisProcess')}</Tag>}
                </Space>
              ),
            },
            { title: t('health.devices'), dataIndex: 'devices', key: 'devices', align: 'right' },
            { title: t('health.connections'), dataIndex: 'connections', key: 'connections', align: 'right' },
            { title: t('health.q.batches'), dataIndex: 'batches_generating', key: 'batches', align: 'right' },
            { title: t('health.q.zips'), dataIndex: 'label_zips', key: 'zips', align: 'right' },
            { title: t('health.version'), key: 'version', render: (_, n) => n.version ?? '—' },
            { title: t('health.started'), key: 'started', render: (_, n) => c.date(n.started_at ?? null) },
          ]}
        />
        <Typography.Paragraph type="secondary" style={{ margin: '12px 0 0' }}>
          {t('health.nodesNote')}
        </Typography.Paragraph>
      </Card>
    </Space>
  );
}

function formatUptime(sec: number, t: (k: string, v?: Record<string, number>) => string): string {
  const d = Math.floor(sec / 86_400);
  const h = Math.floor((sec % 86_400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  if (d > 0) return t('health.uptimeDays', { d, h });
  if (h > 0) return t('health.uptimeHours', { h, m });
  return t('health.uptimeMinutes', { m });
}
