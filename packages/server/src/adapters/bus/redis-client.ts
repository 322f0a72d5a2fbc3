import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '../../errors.js';

/**
 * Redis is a dependency that can fail (issue 11, finding 8). Every Bindery connection is made
 * here so that a call to an unreachable Redis fails within about a second and a half, as a
 * coded 503, instead of queueing until Redis comes back:
 * - `commandTimeout` bounds a command on a connection that is up but not answering;
 * - `whenReady` bounds the wait for a connection that is down, and refuses to queue a command
 *   behind the reconnect (a queued PUBLISH would otherwise go out late, after its fallback ran);
 * - `maxRetriesPerRequest: 1` keeps ioredis from replaying a command across several reconnects.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 1500;

export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return {
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    // Reconnect quickly and keep trying: the process lives on while Redis is away.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    ...extra,
  };
}

export function newRedis(url: string, extra: RedisOptions = {}): Redis {
  const r = new Redis(url, redisOptions(extra));
  // Connection errors are expected while Redis is down; callers see them as DEPENDENCY_UNAVAILABLE.
  r.on('error', () => {});
  return r;
}

export function dependencyUnavailable(cause?: unknown): AppError {
  const e = new AppError('DEPENDENCY_UNAVAILABLE', undefined, { dependency: 'redis' });
  if (cause !== undefined) (e as Error & { cause?: unknown }).cause = cause;
  return e;
}

/**
 * Resolves once `client` is ready (at once when it is), or throws DEPENDENCY_UNAVAILABLE after
 * `boundMs`. A lazy client that has not connected yet is started here.
 */
export async function whenReady(client: Redis, boundMs = REDIS_COMMAND_TIMEOUT_MS): Promise<void> {
  if (client.status === 'ready') return;
  if (client.status === 'end') throw dependencyUnavailable(new Error('connection closed'));
  if (client.status === 'wait') client.connect().catch(() => {});
  // One 'ready' listener per client however many calls wait (a burst must not pile up listeners).
  let ready = readyWaits.get(client);
  if (!ready) {
    ready = new Promise<void>((resolve) => client.once('ready', () => resolve()));
    readyWaits.set(client, ready);
    void ready.then(() => readyWaits.delete(client));
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(dependencyUnavailable(new Error(`redis not ready (${client.status})`))), boundMs);
    timer.unref();
  });
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const readyWaits = new WeakMap<Redis, Promise<void>>();

/** Runs a Redis call once the client is ready; any failure becomes DEPENDENCY_UNAVAILABLE. */
export async function guarded<T>(client: Redis, f: () => Promise<T>): Promise<T> {
  await whenReady(client);
  try {
    return await f();
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw dependencyUnavailable(e);
  }
}

/** PING within the command bound; false when Redis is unreachable. */
export async function pingRedis(client: Redis): Promise<boolean> {
  try {
    await guarded(client, () => client.ping());
    return true;
  } catch {
    return false;
  }
}
