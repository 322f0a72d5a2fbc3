import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { Link, navigate } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice } from '../../ui.js';
import { NewAccountFields, PublicFrame, passwordProblem } from './public-frame.js';

/** /signup: an account for personal use, while an operator has opened sign-up; otherwise it says so. */
export function Component() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { refresh } = useSession();
  const open = useQuery({
    queryKey: ['/api/v1/instance/public'],
    queryFn: () => unwrap(api.GET('/api/v1/instance/public')),
  });
  const [name, setName] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problem = passwordProblem(password, confirm);
    if (problem) return setError(t(problem));
    setBusy(true);
    setError(null);
    try {
      await unwrap(
        api.POST('/api/v1/signup', {
          body: { username: username.trim(), password, ...(name.trim() ? { display_name: name.trim() } : {}) },
        }),
      );
      await refresh();
      navigate('/devices', { replace: true });
    } catch (x) {
      setError(c.err(x));
    } finally {
      setBusy(false);
    }
  };
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
          <form onSubmit={submit} data-testid="signup-form">
            <p className="muted">{t('signup.intro')}</p>
            <NewAccountFields
              value={{ name, username, password, confirm }}
              onChange={(v) => {
                setName(v.name);
                setUsername(v.username);
                setPassword(v.password);
                setConfirm(v.confirm);
              }}
            />
            {error && <Notice kind="error">{error}</Notice>}
            <button type="submit" className="primary wide" disabled={busy} data-testid="signup-submit">
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
