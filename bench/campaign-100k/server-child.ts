/**
 * One Bindery process of bench:campaign-100k, built as main.ts builds it (composeDeps + buildApp)
 * with the campaign scheduler started (unless BENCH_SCHEDULER=0), listening on BENCH_PORT (its download links point there:
 * BINDERY_PUBLIC_URL). Tells its parent its pid and the scheduler's lease name; stops on `close`.
 */
import { buildApp, closeDeps, composeDeps, loadConfig } from '@bindery/server';

const deps = await composeDeps(loadConfig(process.env), { migrate: false });
const { app, services } = await buildApp(deps);
await app.listen({ port: Number(process.env.BENCH_PORT), host: '127.0.0.1' });
// BENCH_SCHEDULER=0: a gateway process only (device signals, pages); the bench runs the scheduler
// in a process of its own so its CPU is measured apart from the gateway work.
if (process.env.BENCH_SCHEDULER !== '0') services.campaigns.engine.start();
process.on('message', async (m: { t: string }) => {
  if (m.t !== 'close') return;
  await services.campaigns.engine.stop();
  await services.campaigns.engine.releaseLeases().catch(() => {});
  await app.close();
  await closeDeps(deps);
  process.exit(0);
});
process.on('disconnect', () => process.exit(0));
process.send?.({ t: 'ready', pid: process.pid, nodeId: services.campaigns.engine.nodeId });
