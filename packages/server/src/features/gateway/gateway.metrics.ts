import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../../shared/metrics.js';

export const STATE_NAMES = ['anonymous', 'registered', 'active', 'subscribed'] as const;

/**
 * The gateway's Prometheus metrics. Labelled children are bound once here, so the per-frame
 * path only increments a number.
 */
export class GatewayMetrics {
  readonly connections: Gauge;
  /** Sockets by connection state; `registered` and above are devices with a known SN. */
  readonly byState: Array<ReturnType<Gauge['labels']>>;
  readonly framesInText: ReturnType<Counter['labels']>;
  readonly framesInBinary: ReturnType<Counter['labels']>;
  readonly framesOut: ReturnType<Counter['labels']>;
  readonly replies: Counter;
  readonly pushes: Counter;
  readonly closes: Counter;
  readonly errorReports: Counter;
  readonly logsStored: Counter;

  constructor(m: Metrics) {
    this.connections = m.gauge('bindery_gateway_connections', 'Open device WebSocket connections on this process');
    const devices = m.gauge('bindery_gateway_devices', 'Device connections on this process by state', ['state']);
    this.byState = STATE_NAMES.map((s) => devices.labels(s));
    for (const c of this.byState) c.set(0);
    const frames = m.counter('bindery_gateway_frames_total', 'Gateway frames', ['direction', 'kind']);
    this.framesInText = frames.labels('in', 'text');
    this.framesInBinary = frames.labels('in', 'binary');
    this.framesOut = frames.labels('out', 'any');
    this.replies = m.counter('bindery_gateway_replies_total', 'Replies by errcode', ['errcode']);
    this.pushes = m.counter('bindery_gateway_pushes_total', 'Pushes by cmd and outcome', ['cmd', 'outcome']);
    this.closes = m.counter('bindery_gateway_closes_total', 'Connections closed by reason', ['reason']);
    this.errorReports = m.counter('bindery_device_error_reports_total', 'error_report frames stored');
    this.logsStored = m.counter('bindery_device_logs_uploaded_total', 'upload_log files stored');
  }
}
