import { Alert, Card, Col, Empty, Row, Select, Space, Typography } from 'antd';
import { BarChart, LineChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { errorText } from '../i18n/index.js';
import { EChart } from './echart.js';

/**
 * The fleet dashboard's charts (issue 14 item 6; docs/fleet-dashboard.md), shared by the vendor and
 * organisation pages. ECharts, tree-shaken to the charts used; imported only by those lazy pages.
 */
echarts.use([LineChart, BarChart, PieChart, GridComponent, TooltipComponent, LegendComponent, CanvasRenderer]);

export interface FleetStatsShape {
  days: number;
  sampled_at: string | null;
  online: Array<{ at: string; devices: number; online: number }>;
  versions: Array<{ version: string | null; devices: number; online: number }>;
  daily: Array<{ day: string; binds: number; unbinds: number; errors: number }>;
  error_codes: Array<{ code: number | null; total: number; per_day: number[] }>;
}

export const DAY_CHOICES = [7, 30, 90, 365] as const;

/** A chart of the dashboard. */
function Chart({ option, testId, height = 280 }: { option: echarts.EChartsCoreOption; testId: string; height?: number }) {
  return <EChart option={option} testId={testId} height={height} className="fleet-chart" />;
}

function ChartCard({ title, empty, children }: { title: string; empty: boolean; children: ReactNode }) {
  const { t } = useTranslation('fleet');
  return (
    <Card title={title} size="small">
      {empty ? <Empty description={t('fleet.empty')} image={Empty.PRESENTED_IMAGE_SIMPLE} /> : children}
    </Card>
  );
}

export function DaysSelect({ value, onChange }: { value: number; onChange(v: number): void }) {
  const { t } = useTranslation('fleet');
  return (
    <Select
      data-testid="fleet-days"
      value={value}
      onChange={onChange}
      style={{ minWidth: 140 }}
      options={DAY_CHOICES.map((d) => ({ value: d, label: t('fleet.days', { n: d }) }))}
    />
  );
}

export function FleetDashboard({
  title,
  filters,
  data,
  error,
  loading,
}: {
  title: string;
  filters: ReactNode;
  data: FleetStatsShape | undefined;
  error: unknown;
  loading: boolean;
}) {
  const { t, i18n } = useTranslation('fleet');
  const lang = i18n.language === 'zh' ? 'zh-CN' : 'en-GB';
  const hourly = (data?.days ?? 0) <= 14;
  const when = (iso: string) =>
    new Date(iso).toLocaleString(
      lang,
      hourly ? { month: 'numeric', day: 'numeric', hour: '2-digit' } : { month: 'numeric', day: 'numeric' },
    );
  const day = (d: string) =>
    new Date(`${d}T00:00:00Z`).toLocaleDateString(lang, { month: 'numeric', day: 'numeric', timeZone: 'UTC' });
  const grid = { left: 48, right: 16, top: 40, bottom: 32, containLabel: false };
  const tooltip = { trigger: 'axis' as const, confine: true };

  // A line of one or two samples is only visible as its points.
  const few = (data?.online.length ?? 0) <= 2;
  const online: echarts.EChartsCoreOption | null = data?.online.length
    ? {
        tooltip,
        grid,
        legend: { top: 0 },
        xAxis: { type: 'category', data: data.online.map((p) => when(p.at)), boundaryGap: false },
        yAxis: { type: 'value', minInterval: 1 },
        series: [
          { name: t('fleet.series.devices'), type: 'line', data: data.online.map((p) => p.devices), showSymbol: few },
          {
            name: t('fleet.series.online'),
            type: 'line',
            data: data.online.map((p) => p.online),
            showSymbol: few,
            areaStyle: {},
          },
        ],
      }
    : null;
  const versions: echarts.EChartsCoreOption | null = data?.versions.length
    ? {
        tooltip: { trigger: 'item', confine: true, formatter: '{b}: {c} ({d}%)' },
        legend: { type: 'scroll', bottom: 0 },
        series: [
          {
            name: t('fleet.versions'),
            type: 'pie',
            radius: ['40%', '68%'],
            center: ['50%', '45%'],
            label: { overflow: 'break', width: 90 },
            data: data.versions.map((v) => ({ name: v.version ?? t('fleet.version.unknown'), value: v.devices })),
          },
        ],
      }
    : null;
  const days = data?.daily.map((d) => day(d.day)) ?? [];
  const binds: echarts.EChartsCoreOption | null = data?.daily.some((d) => d.binds || d.unbinds)
    ? {
        tooltip,
        grid,
        legend: { top: 0 },
        xAxis: { type: 'category', data: days },
        yAxis: { type: 'value', minInterval: 1 },
        series: [
          { name: t('fleet.series.binds'), type: 'bar', data: data.daily.map((d) => d.binds) },
          { name: t('fleet.series.unbinds'), type: 'bar', data: data.daily.map((d) => d.unbinds) },
        ],
      }
    : null;
  const errors: echarts.EChartsCoreOption | null = data?.error_codes.length
    ? {
        tooltip,
        grid,
        legend: { type: 'scroll', top: 0 },
        xAxis: { type: 'category', data: days },
        yAxis: { type: 'value', minInterval: 1 },
        series: data.error_codes.map((c) => ({
          name: c.code === null ? t('fleet.code.other') : String(c.code),
          type: 'bar',
          stack: 'errors',
          data: c.per_day,
        })),
      }
    : null;

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }} data-testid="fleet-dashboard">
      <Space wrap align="center" style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {title}
        </Typography.Title>
        <Space wrap>{filters}</Space>
      </Space>
      {error ? <Alert type="error" showIcon message={errorText(error)} /> : null}
      <Typography.Text type="secondary" data-testid="fleet-sampled">
        {data?.sampled_at
          ? t('fleet.sampled', { at: new Date(data.sampled_at).toLocaleString(lang) })
          : loading
            ? t('fleet.loading')
            : t('fleet.not_sampled')}
      </Typography.Text>
      <Row gutter={[16, 16]}>
        <Col xs={24} xl={12}>
          <ChartCard title={t('fleet.online')} empty={!online}>
            {online && <Chart option={online} testId="chart-online" />}
          </ChartCard>
        </Col>
        <Col xs={24} xl={12}>
          <ChartCard title={t('fleet.versions')} empty={!versions}>
            {versions && <Chart option={versions} testId="chart-versions" />}
          </ChartCard>
        </Col>
        <Col xs={24} xl={12}>
          <ChartCard title={t('fleet.binds')} empty={!binds}>
            {binds && <Chart option={binds} testId="chart-binds" />}
          </ChartCard>
        </Col>
        <Col xs={24} xl={12}>
          <ChartCard title={t('fleet.errors')} empty={!errors}>
            {errors && <Chart option={errors} testId="chart-errors" />}
          </ChartCard>
        </Col>
      </Row>
    </Space>
  );
}
