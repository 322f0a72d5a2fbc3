import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What a request knows that deep code (audit records) wants without every service passing it on:
 * the caller's address. The gate (http/gate.ts) enters it once per request; outside a request
 * (CLI, background jobs) there is none.
 */
export interface RequestContext {
  ip: string | null;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs `fn` (and everything it starts) inside `ctx`. */
export function runInRequest<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}
