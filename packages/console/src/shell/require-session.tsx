import { Navigate, Outlet, useLocation } from 'react-router';
import { useSession } from '../session.js';
import { Loading } from '../ui.js';

/** Signed out anywhere under it: sign in, then come back here (`?next=`, deep links work). */
export function RequireSession() {
  const { session } = useSession();
  const loc = useLocation();
  if (session === undefined) return <Loading />;
  if (session === null) return <Navigate to={`/login?next=${encodeURIComponent(loc.pathname + loc.search)}`} replace />;
  return <Outlet />;
}
