import type { ReactNode } from 'react';
import { useI18n } from './i18n/index.js';

/** Small shared pieces: notices, online badges, the loading line. */
export function Notice({ kind, children, testId }: { kind: 'error' | 'ok' | 'info'; children: ReactNode; testId?: string }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'} data-testid={testId}>
      {children}
    </div>
  );
}

export function Loading() {
  const { t } = useI18n();
  return <p className="muted">{t('common.loading')}</p>;
}

export function OnlineBadge({ online }: { online: boolean }) {
  const { t } = useI18n();
  return (
    <span className={`badge ${online ? 'badge-on' : 'badge-off'}`}>{online ? t('devices.online') : t('devices.offline')}</span>
  );
}

export function RoleName({ role }: { role: string | null }) {
  const { t } = useI18n();
  if (role === 'super_admin' || role === 'device_admin' || role === 'member') return <>{t(`role.${role}`)}</>;
  return <>{t('role.personal')}</>;
}
