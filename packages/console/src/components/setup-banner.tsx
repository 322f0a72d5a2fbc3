import { Suspense, useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { get } from '../api.js';
import { Link } from '../router.js';
import { useMe } from '../session.js';

type WarningCode = 'public_url_localhost' | 'no_operator_password';
interface Warning {
  code: WarningCode;
  message: string;
}

/** How often an open console asks again (a fixed setting shows within a minute of a restart). */
const REFRESH_MS = 60_000;

/**
 * The first-start banner of the shell, for operators only: while BINDERY_PUBLIC_URL is a localhost address
 * (it is printed into every QR label) and while no operator can sign in with a password. It lives in the
 * main chunk, so it stays light: no Ant Design, no query client; its words (namespace `operator`) load only
 * when there is something to say.
 */
export function SetupBanner() {
  const me = useMe();
  const operator = me.user.is_operator;
  const [warnings, setWarnings] = useState<Warning[]>([]);
  useEffect(() => {
    if (!operator) return;
    let live = true;
    const load = () =>
      get<{ warnings: Warning[] }>('/api/v1/instance/warnings').then(
        (r) => live && setWarnings(r.warnings),
        () => {}, // a banner is no place for an error: the health page shows it
      );
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [operator]);
  if (!operator || warnings.length === 0) return null;
  return (
    <Suspense fallback={null}>
      <BannerText warnings={warnings} />
    </Suspense>
  );
}

function BannerText({ warnings }: { warnings: Warning[] }) {
  const { t } = useTranslation('operator');
  return (
    <div className="notice notice-error setup-banner" role="alert" data-testid="setup-banner">
      <strong>{t('banner.title')}</strong>
      <ul style={{ margin: '4px 0', paddingLeft: 18 }}>
        {warnings.map((w) => (
          <li key={w.code} data-testid={`setup-warning-${w.code}`}>
            {t(`banner.${w.code}`, { defaultValue: w.message })}
          </li>
        ))}
      </ul>
      <Link to="/operator" data-testid="setup-banner-health">
        {t('banner.health')}
      </Link>
    </div>
  );
}
