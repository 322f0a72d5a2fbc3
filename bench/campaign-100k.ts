/**
 * bench:campaign-100k — issue 14's campaign targets on this machine: a campaign of BENCH_EXECUTIONS
 * (100 000) executions on PostgreSQL + Redis: BENCH_WORKERS Bindery gateway processes (each its
 * own port) hold the devices and answer the page, one more Bindery process runs the scheduler, with BENCH_LIVE of them real SDK devices that
 * upgrade (the simulator's upgrade path: get_firmware_info, a range-resumable download, MD5,
 * install, reboot, subscribe_corp with the new version) spread over load processes and loopback
 * source addresses as bench:gateway-100k does. When BENCH_LIVE < BENCH_EXECUTIONS the rest are
 * inserted directly as executions that ended (offline, skipped) — the scheduler and the page then
 * read a 100 000-row campaign while only the live part moves; the output says so.
 *
 * Figures:
 * - the scheduler's CPU per device execution: CPU time of the process holding the campaign's lease
 *   (from /proc, over the campaign) / live executions; beside it the other processes' mean CPU, so
 *   what scheduling adds to a gateway process shows;
 * - the time from a device's new-version subscribe_corp (its answer, at the device) to its
 *   execution showing `succeeded` through the campaign page's API (polled every POLL_MS), for
 *   BENCH_PROBES devices run in this process;
 * - the campaign page at 100 000 executions: the console's three requests (campaign with counts,
 *   samples, first 100 executions) at once, p50/p99 per page load, during the run and after it.
 *   Target: p99 ≤ 50 ms.
 *
 *   DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench:campaign-100k
 *   BENCH_LIVE=5000 BENCH_WORKERS=2 npm run bench:campaign-100k
 *   BENCH_DEADLINE_MIN=60 npm run bench:campaign-100k     # the whole run's limit (devices get half of it to subscribe)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Device } from '@bindery/sdk/device.js';
import { FleetCluster } from '@bindery/sdk/sim/cluster.js';
import { wsSocketFactory } from '@bindery/sdk/transport.js';
import { attachUpgrader } from '@bindery/sdk/upgrade.js';
import { buildServices, closeDeps, composeDeps, loadConfig, SYSTEM_CLI } from '@bindery/server';
import { sql } from 'kysely';
import { cpuSeconds, loopbacks, machine, percentile, sleep } from './gateway/machine.js';
import { provision } from './gateway/provision.js';
import { freePort } from './gateway/server.js';

const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 100_000);
const LIVE = Math.min(EXECUTIONS, Number(process.env.BENCH_LIVE ?? EXECUTIONS));
const WORKERS = Number(process.env.BENCH_WORKERS ?? Math.max(2, Math.ceil(LIVE / 19_000)));
const PROBES = Math.min(LIVE, Number(process.env.BENCH_PROBES ?? 20));
const RATE = Number(process.env.BENCH_RATE ?? 6_000);
const PAGE_LOADS = Number(process.env.BENCH_PAGE_LOADS ?? 200);
const POLL_MS = 25;
const TARGET_PAGE_MS = 50;
const DEADLINE_MS = Number(process.env.BENCH_DEADLINE_MIN ?? 40) * 60_000;
setTimeout(() => {
  console.error(`campaign-100k: still running after ${DEADLINE_MS / 60_000} min; giving up`);
  process.exit(2);
}, DEADLINE_MS).unref();

interface Server {
  child: ChildProcess;
  pid: number;
  nodeId: string;
  port: number;
}

async function startServer(env: Record<string, string>, i: number, scheduler: boolean): Promise<Server> {
  const port = await freePort();
  const child = fork(fileURLToPath(new URL('./campaign-100k/server-child.ts', import.meta.url)), [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    env: {
      ...process.env,
      ...env,
      BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      BINDERY_NODE_ID: `bench-gw-${i}`,
      BENCH_PORT: String(port),
      BENCH_SCHEDULER: scheduler ? '1' : '0',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const m = await new Promise<{ pid: number; nodeId: string }>((resolve, reject) => {
    child.once('message', (x) => resolve(x as never));
    child.once('exit', (c) => reject(new Error(`server ${i} exited (${c})`)));
  });
  return { child, port, ...m };
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.send({ t: 'close' });
  const t = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
  await gone;
  clearTimeout(t);
}

function stats(lat: number[]): string {
  const s = [...lat].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms, max ${s.at(-1)?.toFixed(1)} ms (n ${s.length})`;
}

async function main(): Promise<void> {
  const m0 = machine();
  console.log(
    `# bench:campaign-100k — ${EXECUTIONS.toLocaleString('en')} executions, ${LIVE.toLocaleString('en')} live SDK devices, ` +
      `${WORKERS} Bindery gateway processes + 1 scheduling process (PostgreSQL + Redis)\n${m0.text}\n`,
  );
  if (LIVE < EXECUTIONS) {
    console.log(
      `NOTE: ${(EXECUTIONS - LIVE).toLocaleString('en')} of the executions are inserted directly (ended: offline, skipped); ` +
        `only ${LIVE.toLocaleString('en')} devices are live.\n`,
    );
  }
  // A campaign upgrades a fleet in the field: bound and activated long before (a first activation
  // is a write per device before its reply, which is not what this bench measures).
  const p = await provision({ backend: 'postgres', bound: LIVE, activated: true });
  const servers: Server[] = [];
  let scheduler: Server | null = null;
  const fleets: FleetCluster[] = [];
  const probes: Device[] = [];
  const deps = await composeDeps(loadConfig(p.env), { migrate: false });
  try {
    for (let i = 0; i < WORKERS; i++) servers.push(await startServer(p.env, i, false));
    // The scheduler alone in one more process (in production every process runs it, one per
    // campaign by the lease): its CPU is then the scheduler's, apart from sockets and downloads.
    scheduler = await startServer(p.env, WORKERS, true);
    const http = (i: number) => `http://127.0.0.1:${servers[i % servers.length]!.port}`;

    // Probes run here (their upgrade and re-subscribe are timed); the rest in load processes, an
    // equal share against each server, over loopback source addresses.
    const upgrade = { installMs: 1_000, rebootMs: 200 };
    const probeSpecs = p.bound.slice(0, PROBES);
    const rest = p.bound.slice(PROBES);
    const resubscribed = new Map<string, number>();
    probeSpecs.forEach((spec, i) => {
      const d = new Device({
        url: `ws://127.0.0.1:${servers[i % WORKERS]!.port}/`,
        credentials: spec,
        firmwareVersion: '1.0.0',
        socketFactory: wsSocketFactory({ localAddress: '127.0.0.60' }),
      });
      let upgraded = false;
      attachUpgrader(d, upgrade, (o) => {
        if (o.outcome === 'upgraded') upgraded = true;
      });
      d.on('subscribed', () => {
        if (upgraded && !resubscribed.has(spec.sn)) resubscribed.set(spec.sn, Date.now());
      });
      probes.push(d);
    });
    const per = Math.ceil(rest.length / WORKERS);
    for (let i = 0; i < WORKERS; i++) {
      const devices = rest.slice(i * per, (i + 1) * per);
      if (devices.length === 0) continue;
      fleets.push(
        await FleetCluster.start({
          url: `ws://127.0.0.1:${servers[i]!.port}/`,
          devices,
          mode: 'sdk',
          processes: Math.max(1, Math.ceil(devices.length / 19_000)),
          localAddresses: loopbacks(2 + i * 8, 8),
          maxInFlight: 200,
          upgrade,
        }),
      );
    }
    const t0 = performance.now();
    for (const f of fleets) f.startDevices();
    for (const d of probes) d.start();
    let subscribed = 0;
    const off = fleets.map((f) => {
      let n = 0;
      return f.on('counts', (c) => {
        subscribed += c.subscribed - n;
        n = c.subscribed;
      });
    });
    while (subscribed + probes.filter((d) => d.state === 'ready').length < LIVE) {
      if (performance.now() - t0 > DEADLINE_MS / 2) throw new Error(`only ${subscribed} devices subscribed`);
      await sleep(500);
    }
    for (const o of off) o();
    console.log(`${LIVE} devices subscribed in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await sleep(3_000); // the gateways' batched online-state writes (every 2 s) land

    // The image and the campaign, through the services as the routes call them.
    const s = buildServices(deps);
    const db = deps.db.kysely;
    const model = await db.selectFrom('models').select(['vendor_id']).where('model_id', '=', p.modelId).executeTakeFirstOrThrow();
    const fw = await s.firmware.publishUpload(
      SYSTEM_CLI,
      p.modelId,
      { version: '2.0.0', make_current: false },
      randomBytes(Number(process.env.BENCH_IMAGE_KIB ?? 256) * 1024),
    );
    const cpu0 = servers.map((x) => cpuSeconds(x.pid));
    const schedCpu0 = cpuSeconds(scheduler.pid);
    const tc = performance.now();
    const campaign = await s.campaigns.create(SYSTEM_CLI, model.vendor_id, {
      name: 'Bench 100k',
      model_id: p.modelId,
      firmware_id: fw.id,
      stages: { canary_count: 50, rate_per_minute: RATE, factor: 2, stage_size: Math.max(100, Math.ceil(LIVE / 4)) },
      thresholds: { min_executions: 100, failure_pct: 50, timeout_pct: 50, did_not_come_back_pct: 50 },
      offline: 'skip',
      window_sec: 600,
    });
    const seqOf = new Map(
      (
        await db
          .selectFrom('campaign_executions')
          .select(['sn', 'seq'])
          .where('campaign_id', '=', campaign.id)
          .where(
            'sn',
            'in',
            probeSpecs.map((x) => x.sn),
          )
          .execute()
      ).map((r) => [r.sn, Number(r.seq)]),
    );
    const headers = { authorization: `Bearer ${p.operatorToken}` };
    const getJson = async (url: string) => {
      const r = await fetch(url, { headers });
      if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, unknown>;
    };
    // One load of the campaign page: the console's three requests at once (each timed too).
    let k = 0;
    const parts: Record<'campaign' | 'samples' | 'executions', number[]> = { campaign: [], samples: [], executions: [] };
    const timed = async (name: keyof typeof parts, url: string) => {
      const t = performance.now();
      const r = await getJson(url);
      parts[name].push(performance.now() - t);
      return r;
    };
    const pageLoad = async () => {
      const base = `${http(k++)}/api/v1/campaigns/${campaign.id}`;
      const t = performance.now();
      const [c] = await Promise.all([
        timed('campaign', base),
        timed('samples', `${base}/samples`),
        timed('executions', `${base}/executions?limit=100`),
      ]);
      return { ms: performance.now() - t, campaign: c.campaign as { status: string; counts: Record<string, number> } };
    };

    // Probes: from the new-version subscribe to `succeeded` on the campaign page's API.
    // Each probe polls on its own from the moment it re-subscribed (a slow answer delays only it).
    const seen = new Map<string, number>();
    const watchProbes = Promise.all(
      probeSpecs.map(async ({ sn }) => {
        const seq = seqOf.get(sn)!;
        while (performance.now() - tc < DEADLINE_MS / 2) {
          const at = resubscribed.get(sn);
          if (at !== undefined) {
            const r = await getJson(`${http(seq)}/api/v1/campaigns/${campaign.id}/executions?after=${seq - 1}&limit=1`);
            const e = (r.executions as Array<{ sn: string; state: string }>)[0];
            if (e?.sn === sn && e.state === 'succeeded') {
              seen.set(sn, Date.now() - at);
              return;
            }
          }
          await sleep(POLL_MS);
        }
      }),
    );

    // The executions of devices that are not live: ended (offline, skipped) as the scheduler leaves them.
    const now = Date.now();
    const extra = EXECUTIONS - campaign.total;
    const chunk = deps.db.caps.insertChunk(14);
    for (let i = 0; i < extra; i += chunk) {
      await db
        .insertInto('campaign_executions')
        .values(
          Array.from({ length: Math.min(chunk, extra - i) }, (_, j) => ({
            campaign_id: campaign.id,
            sn_key: `zzbench${String(i + j).padStart(7, '0')}`,
            sn: `ZZBENCH${String(i + j).padStart(7, '0')}`,
            device_id: 0,
            seq: campaign.total + i + j,
            stage: 1,
            state: 'skipped',
            detail: 'offline',
            from_version: '1.0.0',
            attempts: 1,
            notified_at: null,
            deadline_at: null,
            finished_at: now,
            updated_at: now,
          })),
        )
        .execute();
    }
    // Inserted behind the engine's back: the counts it keeps by state (028) are told here.
    await db
      .updateTable('campaign_counts')
      .set((eb) => ({ n: eb('n', '+', extra) }))
      .where('campaign_id', '=', campaign.id)
      .where('state', '=', 'skipped')
      .execute();
    console.log(`campaign ${campaign.id}: ${campaign.total} live executions + ${extra} inserted = ${campaign.total + extra}`);

    // The page while the campaign runs (every 500 ms), until it ends.
    const during: number[] = [];
    let last: Awaited<ReturnType<typeof pageLoad>>['campaign'] | null = null;
    let lastLog = 0;
    const leaseOwners = new Set<string>();
    for (;;) {
      const r = await pageLoad();
      during.push(r.ms);
      last = r.campaign;
      const lease = await db.selectFrom('campaigns').select('lease_owner').where('id', '=', campaign.id).executeTakeFirst();
      if (lease?.lease_owner) leaseOwners.add(lease.lease_owner);
      if (performance.now() - lastLog > 10_000) {
        lastLog = performance.now();
        console.log(`  ${((performance.now() - tc) / 1000).toFixed(0)} s: ${last.status} ${JSON.stringify(last.counts)}`);
      }
      if (last.status !== 'running') break;
      if (performance.now() - tc > DEADLINE_MS / 2) throw new Error('the campaign did not finish');
      await sleep(500);
    }
    const seconds = (performance.now() - tc) / 1000;
    const cpu1 = servers.map((x) => cpuSeconds(x.pid));
    const schedCpu = cpuSeconds(scheduler.pid) - schedCpu0;
    await watchProbes;
    console.log(`campaign ${last.status} in ${seconds.toFixed(1)} s: ${JSON.stringify(last.counts)}`);

    const gw = cpu1.map((c, i) => c - cpu0[i]!);
    // Executions the scheduler ran: the live ones it did not skip as offline.
    const live = campaign.total - ((last.counts.skipped ?? 0) - extra);
    console.log(
      `CPU over the campaign: the scheduling process ${schedCpu.toFixed(1)} s (lease holders: ${[...leaseOwners].join(', ')}; ` +
        `scheduler ${scheduler.nodeId}), gateway processes ${gw.map((c) => c.toFixed(1)).join(' + ')} s`,
    );
    console.log(
      `scheduler CPU per device execution: ${((schedCpu / Math.max(1, live)) * 1000).toFixed(2)} ms (${live} executions, ` +
        `${(live / seconds).toFixed(1)} per second over the campaign); ` +
        `gateway CPU per execution ${((gw.reduce((a, b) => a + b, 0) / Math.max(1, live)) * 1000).toFixed(2)} ms`,
    );
    // Where that time goes: the execution's own finished_at (server clock, same machine) after the subscribe.
    const ends = await db
      .selectFrom('campaign_executions')
      .select(['sn', 'finished_at', 'notified_at'])
      .where('campaign_id', '=', campaign.id)
      .where(
        'sn',
        'in',
        probeSpecs.map((x) => x.sn),
      )
      .execute();
    const serverSide = ends.flatMap((e) => {
      const at = resubscribed.get(e.sn);
      return at === undefined || e.finished_at === null ? [] : [Number(e.finished_at) - at];
    });
    const cycle = ends.flatMap((e) => {
      const at = resubscribed.get(e.sn);
      return at === undefined || e.notified_at === null ? [] : [at - Number(e.notified_at)];
    });
    console.log(`  (notified → new-version subscribe: ${stats(cycle)}; subscribe → finished_at: ${stats(serverSide)})`);
    const lat = [...seen.values()];
    console.log(
      `new-version subscribe_corp → succeeded on the campaign page (${lat.length}/${probeSpecs.length} probes, polled every ${POLL_MS} ms): ${stats(lat)}`,
    );
    console.log(`campaign page during the run (${EXECUTIONS.toLocaleString('en')} executions): ${stats(during)}`);
    for (const [n, l] of Object.entries(parts)) console.log(`  ${n.padEnd(10)} ${stats(l)}`);
    for (const l of Object.values(parts)) l.length = 0;

    // After the run, as the rows are now and once autovacuum has passed over them (its visibility
    // map lets PostgreSQL count by the index alone; done here at once instead of waiting for it).
    for (const vacuumed of [false, true]) {
      if (vacuumed) await sql`VACUUM ANALYZE campaign_executions`.execute(db);
      for (const l of Object.values(parts)) l.length = 0;
      const after: number[] = [];
      for (let i = 0; i < 10; i++) await pageLoad();
      for (const l of Object.values(parts)) l.length = 0;
      for (let i = 0; i < PAGE_LOADS; i++) after.push((await pageLoad()).ms);
      const p99 = percentile(
        [...after].sort((a, b) => a - b),
        99,
      );
      console.log(
        `campaign page after the run${vacuumed ? ', vacuumed' : ''}: ${stats(after)} — target p99 ≤ ${TARGET_PAGE_MS} ms ${p99 <= TARGET_PAGE_MS ? 'PASS' : 'FAIL'}`,
      );
      for (const [n, l] of Object.entries(parts)) console.log(`  ${n.padEnd(10)} ${stats(l)}`);
    }
    console.log(`load average at the end: ${machine().load.join(' ')}`);
  } finally {
    for (const d of probes) d.stop();
    for (const f of fleets) await f.stop().catch(() => {});
    for (const x of [...servers, ...(scheduler ? [scheduler] : [])]) await stopServer(x).catch(() => {});
    await closeDeps(deps).catch(() => {});
    await p.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
