import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Descriptions, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import { LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { errorText, formatDate } from '../../i18n/index.js';
import { EChart } from '../echart.js';
import { STATE_COLOR, STATUS_COLOR } from './campaign-list.js';

/**
 * A campaign's page (vendor and organisation; issue 14, docs/ota.md): its progress by state over
 * time (ECharts, loaded only by the lazy pages that use this), why it paused, pause / resume /
 * cancel / retry, and its devices.
 */
echarts.use([LineChart, GridComponent, TooltipComponent, LegendComponent, CanvasRenderer]);

const CHART_STATES = ['queued', 'notified', 'downloading', 'succeeded', 'failed', 'timed_out'] as const;

function ProgressChart({ option }: { option: echarts.EChartsCoreOption }) {
  return <EChart option={option} testId="campaign-chart" height={300} />;
}

/** The threshold a criterion was judged on (pause_figures.criterion names it). */
function thresholdOf(
  th: { failure_pct?: number | null; timeout_pct?: number | null; did_not_come_back_pct?: number | null } | undefined,
  criterion: string,
): number | null | undefined {
  if (!th) return null;
  if (criterion === 'failure') return th.failure_pct;
  if (criterion === 'timeout') return th.timeout_pct;
  return th.did_not_come_back_pct;
}

export function CampaignDetail({
  campaignId,
  backTo,
  listKey,
}: {
  campaignId: string;
  /** The list this page came from. */
  backTo: string;
  /** The list's query key, refreshed after an action. */
  listKey: readonly unknown[];
}) {
  const { t } = useTranslation('campaigns');
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [state, setState] = useState<string | undefined>();
  const campaign = useQuery({
    queryKey: ['campaigns', campaignId],
    queryFn: async () => (await unwrap(api.GET('/api/v1/campaigns/{campaignId}', { params: { path: { campaignId } } }))).campaign,
    refetchInterval: (q) => (q.state.data?.status === 'running' ? 2_000 : 10_000),
  });
  const live = campaign.data?.status === 'running';
  const samples = useQuery({
    queryKey: ['campaigns', campaignId, 'samples'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/campaigns/{campaignId}/samples', { params: { path: { campaignId } } }))).samples,
    refetchInterval: live ? 2_000 : 10_000,
  });
  const executions = useQuery({
    // Refetched whenever the counts move (they are polled with the campaign).
    queryKey: ['campaigns', campaignId, 'executions', state, JSON.stringify(campaign.data?.counts ?? null)],
    queryFn: async () =>
      await unwrap(
        api.GET('/api/v1/campaigns/{campaignId}/executions', {
          params: {
            path: { campaignId },
            query: { limit: 100, ...(state ? { state: state as 'failed' } : {}) },
          },
        }),
      ),
    placeholderData: (prev) => prev,
  });
  const act = useMutation({
    mutationFn: async (action: 'pause' | 'resume' | 'cancel' | 'retry') => {
      const path = { params: { path: { campaignId } } };
      if (action === 'pause') return (await unwrap(api.POST('/api/v1/campaigns/{campaignId}/pause', path))).campaign;
      if (action === 'resume') return (await unwrap(api.POST('/api/v1/campaigns/{campaignId}/resume', path))).campaign;
      if (action === 'cancel') return (await unwrap(api.POST('/api/v1/campaigns/{campaignId}/cancel', path))).campaign;
      return (await unwrap(api.POST('/api/v1/campaigns/{campaignId}/retry', path))).campaign;
    },
    onSuccess: async (_c, action) => {
      message.success(t(`campaigns.done.${action}`));
      await qc.invalidateQueries({ queryKey: ['campaigns', campaignId] });
      await qc.invalidateQueries({ queryKey: [...listKey] });
    },
    onError: (e) => message.error(errorText(e)),
  });

  const option = useMemo<echarts.EChartsCoreOption>(() => {
    const rows = samples.data ?? [];
    return {
      tooltip: { trigger: 'axis', confine: true },
      legend: { top: 0, type: 'scroll' },
      grid: { left: 48, right: 16, top: 40, bottom: 32 },
      xAxis: { type: 'category', boundaryGap: false, data: rows.map((r) => new Date(r.at).toLocaleTimeString()) },
      yAxis: { type: 'value', minInterval: 1 },
      series: CHART_STATES.map((s) => ({
        name: t(`campaigns.state.${s}`),
        type: 'line',
        showSymbol: false,
        color: STATE_COLOR[s],
        data: rows.map((r) => r.counts[s]),
      })),
    };
  }, [samples.data, t]);

  const c = campaign.data;
  if (campaign.error) return <Alert type="error" showIcon message={errorText(campaign.error)} />;
  if (!c) return null;
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Link to={backTo}>{t('campaigns.back')}</Link>
      <Space wrap style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {c.name}{' '}
          <Tag color={STATUS_COLOR[c.status]} data-testid="campaign-status">
            {t(`campaigns.status.${c.status}`)}
          </Tag>
        </Typography.Title>
        <Space wrap>
          {c.status === 'running' && (
            <Button onClick={() => act.mutate('pause')} loading={act.isPending} data-testid="campaign-pause">
              {t('campaigns.pause')}
            </Button>
          )}
          {c.status === 'paused' && (
            <Button type="primary" onClick={() => act.mutate('resume')} loading={act.isPending} data-testid="campaign-resume">
              {t('campaigns.resume')}
            </Button>
          )}
          {c.status !== 'cancelled' && c.counts.failed + c.counts.timed_out > 0 && (
            <Button onClick={() => act.mutate('retry')} loading={act.isPending} data-testid="campaign-retry">
              {t('campaigns.retry')}
            </Button>
          )}
          {(c.status === 'running' || c.status === 'paused') && (
            <Popconfirm title={t('campaigns.cancelConfirm')} onConfirm={() => act.mutate('cancel')}>
              <Button danger data-testid="campaign-cancel">
                {t('campaigns.cancel')}
              </Button>
            </Popconfirm>
          )}
        </Space>
      </Space>
      {c.status === 'paused' && c.pause_reason && (
        <Alert
          type="warning"
          showIcon
          data-testid="campaign-pause-reason"
          message={
            c.pause_figures?.criterion ? t(`campaigns.criterion.${c.pause_figures.criterion}`) : t('campaigns.pausedByHand')
          }
          description={
            c.pause_figures ? (
              <>
                <div>
                  {t('campaigns.figures', {
                    executed: c.pause_figures.executed,
                    succeeded: c.pause_figures.succeeded,
                    failed: c.pause_figures.failed,
                    timed_out: c.pause_figures.timed_out,
                    dnc: c.pause_figures.did_not_come_back,
                  })}
                </div>
                {c.pause_figures.criterion && (
                  <Typography.Text type="secondary">
                    {t('campaigns.threshold', { pct: thresholdOf(c.thresholds, c.pause_figures.criterion) ?? '—' })}
                  </Typography.Text>
                )}
              </>
            ) : null
          }
        />
      )}
      <Card size="small">
        <Descriptions size="small" layout="vertical" column={{ xs: 2, sm: 3, lg: 6 }}>
          <Descriptions.Item label={t('campaigns.col.version')}>{c.version}</Descriptions.Item>
          <Descriptions.Item label={t('campaigns.devices')}>{c.total}</Descriptions.Item>
          <Descriptions.Item label={t('campaigns.col.stage')}>
            {c.stage === 0 ? t('campaigns.canary') : c.stage}
          </Descriptions.Item>
          <Descriptions.Item label={t('campaigns.f.rate')}>{c.rate_per_minute}</Descriptions.Item>
          <Descriptions.Item label={t('campaigns.thresholdsShort')}>
            {t('campaigns.thresholdsText', {
              min: c.thresholds?.min_executions ?? '—',
              failure: c.thresholds?.failure_pct ?? '—',
              timeout: c.thresholds?.timeout_pct ?? '—',
              dnc: c.thresholds?.did_not_come_back_pct ?? '—',
            })}
          </Descriptions.Item>
          <Descriptions.Item label={t('campaigns.f.errorReports')}>
            <span data-testid="campaign-error-report-threshold">{c.error_report_threshold ?? '—'}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('campaigns.col.created')}>{formatDate(c.created_at ?? null)}</Descriptions.Item>
          <Descriptions.Item label={t('campaigns.f.maintenance')}>
            <span data-testid="campaign-maintenance">
              {c.maintenance_window
                ? t('campaigns.windowText', {
                    start: c.maintenance_window.start,
                    end: c.maintenance_window.end,
                    days: c.maintenance_window.days?.length
                      ? c.maintenance_window.days.map((d) => t(`campaigns.day.${d}`)).join(' ')
                      : t('campaigns.everyDay'),
                  })
                : t('campaigns.anyTime')}
            </span>
          </Descriptions.Item>
        </Descriptions>
        <Space wrap size={[8, 8]}>
          {Object.entries(c.counts).map(([s, n]) => (
            <Tag key={s} color={STATE_COLOR[s]} data-testid={`campaign-count-${s}`}>
              {t(`campaigns.state.${s}`)}: {n}
            </Tag>
          ))}
        </Space>
      </Card>
      <Card size="small" title={t('campaigns.chart')}>
        <ProgressChart option={option} />
      </Card>
      <Card
        size="small"
        title={t('campaigns.executions')}
        data-testid="campaign-executions"
        extra={
          <Select
            allowClear
            placeholder={t('campaigns.allStates')}
            style={{ minWidth: 140 }}
            value={state}
            onChange={setState}
            options={Object.keys(STATE_COLOR).map((s) => ({ value: s, label: t(`campaigns.state.${s}`) }))}
          />
        }
      >
        <Table
          rowKey="sn"
          size="small"
          loading={executions.isLoading}
          dataSource={executions.data?.executions ?? []}
          pagination={false}
          scroll={{ x: 600 }}
          columns={[
            { title: 'SN', dataIndex: 'sn' },
            {
              title: t('campaigns.col.state'),
              dataIndex: 'state',
              render: (s: string) => <Tag color={STATE_COLOR[s]}>{t(`campaigns.state.${s}`)}</Tag>,
            },
            {
              title: t('campaigns.col.detail'),
              dataIndex: 'detail',
              render: (d: string | null, e: { error_reports?: number }) =>
                d ? t(`campaigns.detail.${d}`, { defaultValue: d, n: e.error_reports ?? 0 }) : '',
            },
            { title: t('campaigns.col.from'), dataIndex: 'from_version' },
            { title: t('campaigns.col.stage'), dataIndex: 'stage' },
            { title: t('campaigns.col.updated'), dataIndex: 'updated_at', render: (v: string) => formatDate(v) },
          ]}
        />
      </Card>
    </Space>
  );
}
