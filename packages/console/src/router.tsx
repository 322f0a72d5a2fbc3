import { Link, type NavigateFunction, useLocation as useRouterLocation } from 'react-router';

/**
 * What the phone pages need from react-router, in their words: `navigate()` from event handlers (through
 * the navigate function main.tsx registers), and the location as path + parsed query + full href.
 */
export { Link };

export interface Location {
  path: string;
  query: URLSearchParams;
  href: string;
}

let router: NavigateFunction | null = null;

/** main.tsx registers react-router's navigate function once, inside the router. */
export function registerRouter(r: NavigateFunction): void {
  router = r;
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (router) void router(to, { replace: opts.replace ?? false });
  else window.location.assign(to);
  window.scrollTo(0, 0);
}

export function useLocation(): Location {
  const l = useRouterLocation();
  return {
    path: l.pathname,
    query: new URLSearchParams(l.search),
    href: window.location.origin + l.pathname + l.search + l.hash,
  };
}

/** Only same-site paths may be continued to after signing in. */
export function safeNext(next: string | null): string {
  const sameSite = next?.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\');
  return sameSite && next ? next : '/devices';
}
