import * as echarts from 'echarts/core';
import { useEffect, useRef } from 'react';

/**
 * One ECharts chart on a canvas that follows its box's width (desktop columns, phone full width).
 * The page that uses it registers the chart kinds it draws (`echarts.use`), so each lazy page
 * carries only its own.
 */
export function EChart({
  option,
  testId,
  height = 280,
  className,
}: {
  option: echarts.EChartsCoreOption;
  testId: string;
  height?: number;
  className?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!ref.current) return;
    chart.current = echarts.init(ref.current, undefined, { renderer: 'canvas' });
    const ro = new ResizeObserver(() => chart.current?.resize());
    ro.observe(ref.current);
    return () => {
      ro.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption(option, true);
  }, [option]);
  return <div ref={ref} data-testid={testId} className={className} style={{ height, width: '100%' }} />;
}
