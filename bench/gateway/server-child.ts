import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { ServerStats as Stats } from './server.js';

/**
 * A server under measurement, run as a child of a benchmark (node --expose-gc --import tsx):
 * BENCH_SERVER=bindery is the real app (composeDeps + buildApp, exactly as main.ts builds it,
 * configured from BINDERY_* env); BENCH_SERVER=bare is the baseline, a bare `ws` server on a
 * plain http server. BENCH_WORKERS=n runs n of them under node:cluster sharing one port.
 * It answers its parent over IPC: `mem` (collect garbage everywhere, then report pids so the
 * parent reads their RSS), `stats` (gateway socket counts), `close`.
 */

type Msg =
  | { t: 'mem' }
  | { t: 'stats' }
  | { t: 'close' }
  | { t: 'snapshot'; file: string }
  | { t: 'gc-done'; heap: number; external: number }
  | { t: 'stats-reply'; stats: Stats };

const kind = process.env.BENCH_SERVER === 'bare' ? 'bare' : 'bindery';
const workers = Number(process.env.BENCH_WORKERS ?? '0');
const port = Number(process.env.BENCH_PORT ?? '0');
const host = '127.0.0.1';

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with --expose-gc');
  g();
  g();
}

/** Starts one server in this process; returns its stats function and closer. */
async function serve(): Promise<{ port: number; stats: () => Stats; close: () => Promise<void> }> {
  if (kind === 'bare') {
    const server = createServer((_req, res) => res.end('bare'));
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    // The baseline speaks the same frames as Bindery with none of its work: every request gets
    // errcode 0 and a canned body (an active_code for register, a secret for active), so a
    // device's whole flow and its 30 s heartbeats run against it exactly as against Bindery.
    wss.on('connection', (ws) => {
      ws.on('message', (data) => ws.send(bareReply(String(data))));
    });
    await new Promise<void>((r) => server.listen(port, host, () => r()));
    return {
      port: (server.address() as AddressInfo).port,
      stats: () => ({ pid: process.pid, connections: wss.clients.size, devices: 0 }),
      close: async () => {
        for (const c of wss.clients) c.terminate();
        await new Promise((r) => server.close(() => r(null)));
      },
    };
  }
  // Loaded only here, so the baseline process carries none of the server's code.
  const { buildApp, closeDeps, composeDeps, loadConfig } = await import('@bindery/server');
  const config = loadConfig(process.env);
  const deps = await composeDeps(config, { migrate: workers === 0 || cluster.isPrimary });
  const { app } = await buildApp(deps);
  await app.listen({ port, host });
  return {
    port: (app.server.address() as AddressInfo).port,
    stats: () => ({ pid: process.pid, ...app.gateway.stats }),
    close: async () => {
      await app.close();
      await closeDeps(deps);
    },
  };
}

async function single(): Promise<void> {
  const s = await serve();
  process.on('message', async (m: Msg) => {
    if (m.t === 'mem') {
      gc();
      const u = process.memoryUsage();
      process.send?.({ t: 'mem', pids: [process.pid], heap: [u.heapUsed], external: [u.external] });
    } else if (m.t === 'stats') {
      process.send?.({ t: 'stats', stats: [s.stats()] });
    } else if (m.t === 'snapshot') {
      // Diagnostics: where the heap goes (BENCH_HEAP_SNAPSHOT in gateway-idle).
      const { writeHeapSnapshot } = await import('node:v8');
      process.send?.({ t: 'snapshot', file: writeHeapSnapshot(m.file) });
    } else if (m.t === 'close') {
      await s.close().catch(() => {});
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ t: 'ready', port: s.port, pids: [process.pid] });
}

async function primary(): Promise<void> {
  if (!port) throw new Error('BENCH_PORT is required with BENCH_WORKERS');
  if (kind === 'bindery') {
    // Migrate once here, so workers never race each other over the schema.
    const { closeDeps, composeDeps, loadConfig } = await import('@bindery/server');
    const deps = await composeDeps(loadConfig(process.env), { migrate: true });
    await closeDeps(deps);
  }
  cluster.schedulingPolicy = process.env.BENCH_SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  const list = Array.from({ length: workers }, () => cluster.fork());
  await Promise.all(list.map((w) => new Promise((r) => w.once('listening', r))));
  /** Sends `m` to every worker and waits for one answer of type `reply` from each. */
  const all = <T>(m: Msg, reply: string): Promise<T[]> =>
    Promise.all(
      list.map(
        (w) =>
          new Promise<T>((resolve) => {
            const on = (x: Msg & Record<string, unknown>) => {
              if (x.t !== reply) return;
              w.off('message', on);
              resolve(x as T);
            };
            w.on('message', on);
            w.send(m);
          }),
      ),
    );
  process.on('message', async (m: Msg) => {
    if (m.t === 'mem') {
      const r = await all<{ heap: number; external: number }>({ t: 'mem' }, 'gc-done');
      gc();
      process.send?.({
        t: 'mem',
        pids: list.map((w) => w.process.pid!),
        heap: r.map((x) => x.heap),
        external: r.map((x) => x.external),
      });
    } else if (m.t === 'stats') {
      const r = await all<{ stats: Stats }>({ t: 'stats' }, 'stats-reply');
      process.send?.({ t: 'stats', stats: r.map((x) => x.stats) });
    } else if (m.t === 'close') {
      await all({ t: 'close' }, 'gc-done').catch(() => {});
      process.exit(0);
    }
  });
  const bye = () => {
    for (const w of list) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('disconnect', bye);
  process.send?.({ t: 'ready', port, pids: list.map((w) => w.process.pid!), primary: process.pid });
}

async function worker(): Promise<void> {
  const s = await serve();
  process.on('message', async (m: Msg) => {
    if (m.t === 'mem') {
      gc();
      const u = process.memoryUsage();
      process.send?.({ t: 'gc-done', heap: u.heapUsed, external: u.external });
    } else if (m.t === 'stats') {
      process.send?.({ t: 'stats-reply', stats: s.stats() });
    } else if (m.t === 'close') {
      await s.close().catch(() => {});
      process.send?.({ t: 'gc-done', heap: 0, external: 0 });
      process.exit(0);
    }
  });
}

if (workers === 0) await single();
else if (cluster.isPrimary) await primary();
else await worker();

const CANNED: Record<string, unknown> = {
  register: { active_code: 'BARE-ACTIVE-CODE' },
  active: { secret: 'BARE-SECRET' },
};

/** The bare server's answer to one request frame (the req_id echoed, as §A1 requires). */
function bareReply(text: string): string {
  let f: { cmd?: unknown; headers?: { req_id?: unknown } } = {};
  try {
    f = JSON.parse(text) as typeof f;
  } catch {
    return '{"errcode":600000,"errmsg":"not JSON"}';
  }
  const body =
    f.cmd === 'get_timestamp' ? { timestamp: Math.floor(Date.now() / 1000) } : CANNED[typeof f.cmd === 'string' ? f.cmd : ''];
  return JSON.stringify({ headers: { req_id: f.headers?.req_id ?? '' }, ...(body ? { body } : {}), errcode: 0, errmsg: 'ok' });
}
