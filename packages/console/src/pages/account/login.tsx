import { Suspense, useEffect, useState } from 'react';
import { api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { Link, navigate, safeNext, useLocation } from '../../router.js';
import { SignInForm } from './sign-in-form.js';

export function LoginPage() {
  const { t, lang, setLang } = useI18n();
  const loc = useLocation();
  const next = safeNext(loc.query.get('next'));
  return (
    <main className="page narrow login">
      <div className="login-head">
        <span className="brand">Bindery</span>
        <button type="button" className="link-btn" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang">
          {t('lang.switch')}
        </button>
      </div>
      <SignInForm
        className="card"
        submitLabel={t('login.submit')}
        onSignedIn={() => navigate(next, { replace: true })}
        head={
          <>
            <h1>{t('login.title')}</h1>
            {next.startsWith('/connect/') && <p className="muted">{t('login.continue')}</p>}
          </>
        }
      />
      {/* Its words load with the account namespace; the form above never waits for them. */}
      <Suspense fallback={null}>
        <AccountLinks />
      </Suspense>
    </main>
  );
}

/** "Create an account" while an operator has opened sign-up, and where a forgotten password is reset. */
function AccountLinks() {
  // Common words: the sign-in page is on the phone's way to a bind, where no other namespace loads.
  const { t } = useI18n();
  const [open, setOpen] = useState(false);
  useEffect(() => {
    let live = true;
    unwrap(api.GET('/api/v1/instance/public')).then(
      (r) => live && setOpen(r.signup_open === true),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  return (
    <div className="small">
      {open && (
        <p>
          <Link to="/signup" data-testid="signup-link">
            {t('login.signupLink')}
          </Link>
        </p>
      )}
      <p className="muted">{t('login.forgot')}</p>
    </div>
  );
}
