import { createContext, type ReactNode, useCallback, useContext, useEffect, useRef, useState } from 'react';
import { api, type Notification } from './api.js';

/**
 * The inbox, live: one EventSource per signed-in tab. `unread` comes first and again whenever it
 * changes elsewhere; `notification` events are prepended to whatever list is showing.
 */
interface NotifCtx {
  unread: number;
  /** Notifications that arrived over the stream since the page loaded, newest first. */
  live: Notification[];
  markRead(ids: number[] | 'all'): Promise<void>;
  connected: boolean;
  /** The stream has sent its first count: `unread` is the server's, not the initial 0. */
  live_ready: boolean;
}

const Ctx = createContext<NotifCtx | null>(null);

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const [unread, setUnread] = useState(0);
  const [live, setLive] = useState<Notification[]>([]);
  const [connected, setConnected] = useState(false);
  const [ready, setReady] = useState(false);
  const seen = useRef(new Set<number>());
  useEffect(() => {
    const es = new EventSource('/api/v1/notifications/stream');
    es.addEventListener('open', () => setConnected(true));
    es.addEventListener('error', () => setConnected(false));
    es.addEventListener('unread', (e) => {
      const d = JSON.parse((e as MessageEvent<string>).data) as { unread: number };
      setUnread(d.unread);
      setReady(true);
    });
    es.addEventListener('notification', (e) => {
      const n = JSON.parse((e as MessageEvent<string>).data) as Notification;
      if (seen.current.has(n.id)) return;
      seen.current.add(n.id);
      setLive((l) => [n, ...l]);
      // the count follows in its own `unread` event
    });
    return () => es.close();
  }, []);
  const markRead = useCallback(async (ids: number[] | 'all') => {
    const r = await api<{ unread: number }>('POST', '/api/v1/notifications/read', ids === 'all' ? { all: true } : { ids });
    setUnread(r.unread);
    setLive((l) => l.map((n) => (ids === 'all' || ids.includes(n.id) ? { ...n, read: true } : n)));
  }, []);
  return <Ctx.Provider value={{ unread, live, markRead, connected, live_ready: ready }}>{children}</Ctx.Provider>;
}

export function useNotifications(): NotifCtx {
  const v = useContext(Ctx);
  if (!v) throw new Error('useNotifications outside NotificationsProvider');
  return v;
}
