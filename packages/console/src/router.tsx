import { type AnchorHTMLAttributes, type MouseEvent, useEffect, useState } from 'react';

/** A small history router: the server answers every console path with index.html. */
export interface Location {
  path: string;
  query: URLSearchParams;
  href: string;
}

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search), href: window.location.href };
}

const EVENT = 'bindery:navigate';

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.scrollTo(0, 0);
  window.dispatchEvent(new Event(EVENT));
}

export function useLocation(): Location {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    const on = () => setLoc(current());
    window.addEventListener('popstate', on);
    window.addEventListener(EVENT, on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener(EVENT, on);
    };
  }, []);
  return loc;
}

export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={onClick} {...rest} />;
}

/** Only same-site paths may be continued to after signing in. */
export function safeNext(next: string | null): string {
  const sameSite = next?.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\');
  return sameSite && next ? next : '/devices';
}
