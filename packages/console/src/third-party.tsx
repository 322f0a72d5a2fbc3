import { useEffect, useState } from 'react';
import { ApiError, post } from './api.js';
import { useI18n } from './i18n/index.js';
import { Notice } from './ui.js';

/**
 * Third-party entry (issue 15, item 3; docs/third-party.md): an application opens /hw/addDevice or a
 * device's page with `app` and `redirect_uri`. The request is remembered for this tab until the person
 * is done, then the server says whether the application registered that origin, and only then does the
 * console send them back with `bindery_result` and `bindery_sn`. Binding itself is unchanged.
 */
const KEY = 'bindery.return';

export interface PendingReturn {
  app: string;
  redirect_uri: string;
}

/** Keeps `app` + `redirect_uri` of the page's address, if it has both. */
export function rememberReturn(query: URLSearchParams): void {
  const app = query.get('app');
  const redirect = query.get('redirect_uri');
  if (!app || !redirect) return;
  try {
    sessionStorage.setItem(KEY, JSON.stringify({ app, redirect_uri: redirect } satisfies PendingReturn));
  } catch {
    // storage blocked: the person finishes here, without the way back
  }
}

export function pendingReturn(): PendingReturn | null {
  try {
    const v = sessionStorage.getItem(KEY);
    return v ? (JSON.parse(v) as PendingReturn) : null;
  } catch {
    return null;
  }
}

/** Asks the server, then leaves for the application with the outcome; resolves with a refusal to show. */
export async function returnToApp(outcome: { result: string; sn?: string }): Promise<ApiError | null> {
  const p = pendingReturn();
  if (!p) return null;
  try {
    const ok = await post<{ redirect_uri: string }>('/api/v1/third-party/return', p);
    const u = new URL(ok.redirect_uri);
    u.searchParams.set('bindery_result', outcome.result);
    if (outcome.sn) u.searchParams.set('bindery_sn', outcome.sn);
    sessionStorage.removeItem(KEY);
    window.location.assign(u.toString());
    return null;
  } catch (e) {
    return e instanceof ApiError ? e : new ApiError(0, 'NETWORK', String(e));
  }
}

/**
 * Where an application sent the person: after a bind it takes them back at once; on a device page or
 * the add-device page it offers the way back (viewed / cancelled).
 */
export function ReturnToApp({ result, sn, auto = false }: { result: string; sn?: string; auto?: boolean }) {
  const { t, err } = useI18n();
  const [refused, setRefused] = useState<ApiError | null>(null);
  const pending = pendingReturn();
  useEffect(() => {
    if (auto && pendingReturn()) void returnToApp({ result, ...(sn ? { sn } : {}) }).then(setRefused);
  }, [auto, result, sn]);
  if (!pending) return null;
  if (refused)
    return (
      <Notice kind="error" testId="return-refused">
        {err(refused)}
      </Notice>
    );
  if (auto)
    return (
      <Notice kind="info" testId="returning">
        {t('thirdParty.returning')}
      </Notice>
    );
  return (
    <button
      type="button"
      className="button wide"
      data-testid="return-to-app"
      onClick={() => void returnToApp({ result, ...(sn ? { sn } : {}) }).then(setRefused)}
    >
      {t('thirdParty.back')}
    </button>
  );
}
