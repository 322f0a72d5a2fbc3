import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiError } from '../api/client.js';

/**
 * Server state for the admin and account screens through TanStack Query. It lives in their lazy chunks
 * (routes.tsx `page()` wraps each in this provider) so the phone's scan → bind path does not carry it.
 * Refusals (4xx) are answers, not flakes: they are not retried.
 */
export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      retry: (n, e) => !(e instanceof ApiError && e.status >= 400 && e.status < 500) && n < 2,
    },
  },
});

export function QueryProvider({ children }: { children: ReactNode }) {
  return <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>;
}
