import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { ApiError, api, type Session } from './api.js';

interface SessionCtx {
  /** undefined while loading, null when signed out. */
  session: Session | null | undefined;
  login(username: string, password: string): Promise<void>;
  logout(): Promise<void>;
  refresh(): Promise<void>;
}

const Ctx = createContext<SessionCtx | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const refresh = useCallback(async () => {
    try {
      setSession(await api<Session>('GET', '/api/v1/session'));
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 404)) setSession(null);
      else throw e;
    }
  }, []);
  useEffect(() => {
    refresh().catch(() => setSession(null));
  }, [refresh]);
  const login = useCallback(async (username: string, password: string) => {
    setSession(await api<Session>('POST', '/api/v1/session', { username, password }));
  }, []);
  const logout = useCallback(async () => {
    try {
      await api('DELETE', '/api/v1/session');
    } finally {
      setSession(null);
    }
  }, []);
  return <Ctx.Provider value={{ session, login, logout, refresh }}>{children}</Ctx.Provider>;
}

export function useSession(): SessionCtx {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}

/** The signed-in session; pages under the shell only render once there is one. */
export function useMe(): Session {
  const s = useSession().session;
  if (!s) throw new Error('useMe without a session');
  return s;
}
