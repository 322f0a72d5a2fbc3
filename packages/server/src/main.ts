import { buildApp } from './app.js';
import { closeDeps, composeDeps } from './compose.js';
import { ConfigError, loadConfig } from './config.js';

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
  const deps = await composeDeps(config);
  const { app } = await buildApp(deps);
  await app.listen({ port: config.port, host: config.host });
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
