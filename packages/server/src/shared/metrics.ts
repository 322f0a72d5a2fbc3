import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics: process metrics plus Bindery's own counters. Features ask for a metric by
 * name; asking twice returns the same one, so features need no shared registration order.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly made = new Map<string, Counter | Gauge | Histogram>();

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'bindery_process_' });
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return this.get(name, () => new Counter({ name, help, labelNames, registers: [this.registry] })) as Counter;
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return this.get(name, () => new Gauge({ name, help, labelNames, registers: [this.registry] })) as Gauge;
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets?: number[]): Histogram {
    return this.get(
      name,
      () => new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) }),
    ) as Histogram;
  }

  private get(name: string, make: () => Counter | Gauge | Histogram): Counter | Gauge | Histogram {
    let m = this.made.get(name);
    if (!m) {
      m = make();
      this.made.set(name, m);
    }
    return m;
  }
}
