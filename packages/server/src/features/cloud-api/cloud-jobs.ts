import type { Logger } from 'pino';
import type { Services } from '../../services.js';

/** How often the loop looks; renewal periods and the silence window are far longer. */
const TICK_MS = 30_000;

/**
 * The periodic work of the cloud API in a running server: model_ticket renewal (§B1) and the
 * offline sweep of cloud devices (§B3). Tests call the two runOnce-style methods directly; main.ts
 * starts this loop and stops it on shutdown. Safe on every process at once (see each method).
 */
export function startCloudJobs(services: Services, logger: Logger, tickMs = TICK_MS): { stop(): Promise<void> } {
  let running: Promise<void> | null = null;
  const tick = () => {
    if (running) return;
    running = (async () => {
      try {
        await services.ticketRenewal.runOnce();
        await services.cloudDevices.sweepOffline();
      } catch (err) {
        logger.error({ err }, 'cloud jobs failed; retrying on the next tick');
      } finally {
        running = null;
      }
    })();
  };
  const timer = setInterval(tick, tickMs);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
