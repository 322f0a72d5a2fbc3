import { buildApp } from './app.js';
import { closeDeps, composeDeps } from './compose.js';
import { ConfigError, loadConfig } from './config.js';
import { startCloudJobs } from './features/cloud-api/cloud-jobs.js';
import { startFleetSampler } from './features/fleet-stats/fleet-stats.service.js';

/** The composition root: config → adapters → app → listen, and a graceful stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  // As the server: files created 0600 and temp files a crash left swept (findings 9, 10); the CLI never does.
  const deps = await composeDeps(config, { server: true });
  const { app, services } = await buildApp(deps);
  await app.listen({ port: config.port, host: config.host });
  // model_ticket renewal and the cloud-device offline sweep (safe on every process at once).
  const cloudJobs = startCloudJobs(services, deps.logger);
  // Vendor callbacks and webhooks: every process delivers; rows are claimed, so none twice.
  services.callbacks.outbox.start();
  // Firmware campaigns: every process runs the scheduler; a lease per campaign keeps it to one at a time.
  services.campaigns.engine.start();
  // Fleet dashboard samples (online counts, firmware versions): every process; a recent sample skips.
  const fleetSampler = startFleetSampler(services.fleetStats, deps.logger);
  deps.logger.info(
    { url: config.publicUrl, tls: !!config.tls, storage: deps.db.caps.backend, bus: config.redisUrl ? 'redis' : 'memory' },
    'bindery is up',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      deps.logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownGraceMs);
    force.unref();
    try {
      await cloudJobs.stop();
      await fleetSampler.stop();
      await services.campaigns.engine.stop();
      await services.campaigns.engine.releaseLeases().catch(() => {});
      await services.callbacks.outbox.stop();
      await app.close();
      await closeDeps(deps);
      process.exit(0);
    } catch (err) {
      deps.logger.error({ err }, 'error while shutting down');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
