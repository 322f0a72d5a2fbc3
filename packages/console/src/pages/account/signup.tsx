import { useQuery } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { Link, navigate } from '../../router.js';
import { Loading, Notice } from '../../ui.js';
import { NewAccountFields, PublicFrame, useNewAccountForm } from './public-frame.js';

/** /signup: an account for personal use, while an operator has opened sign-up; otherwise it says so. */
export function Component() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const open = useQuery({
    queryKey: ['/api/v1/instance/public'],
    queryFn: () => unwrap(api.GET('/api/v1/instance/public')),
  });
  const form = useNewAccountForm(
    (body) => unwrap(api.POST('/api/v1/signup', { body })),
    () => navigate('/devices', { replace: true }),
  );
  return (
    <PublicFrame testId="signup-page">
      <section className="card">
        <h1>{t('signup.title')}</h1>
        {open.isLoading ? (
          <Loading />
        ) : open.error ? (
          <Notice kind="error">{c.err(open.error)}</Notice>
        ) : !open.data?.signup_open ? (
          <Notice kind="info" testId="signup-closed">
            {t('signup.closed')}
          </Notice>
        ) : (
          <form onSubmit={form.submit} data-testid="signup-form">
            <p className="muted">{t('signup.intro')}</p>
            <NewAccountFields value={form.value} onChange={form.setValue} />
            {form.error && <Notice kind="error">{form.error}</Notice>}
            <button type="submit" className="primary wide" disabled={form.busy} data-testid="signup-submit">
              {t('signup.submit')}
            </button>
          </form>
        )}
        <p className="small">
          <Link to="/login">{t('signup.haveAccount')}</Link>
        </p>
      </section>
    </PublicFrame>
  );
}
