import { useQuery } from '@tanstack/react-query';
import { type FormEvent, type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { Link } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice } from '../../ui.js';
import { hashToken, NewPasswordFields, PublicFrame, passwordProblem } from './public-frame.js';

/**
 * /reset-password#<token>: the one-time link an operator or super admin made. Says whose password it
 * sets and until when; the new password ends every earlier sign-in of that person; then sign in.
 */
export function Component() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { refresh } = useSession();
  const [token] = useState(hashToken);
  const [done, setDone] = useState(false);
  const preview = useQuery({
    queryKey: ['reset-preview', token],
    queryFn: () => unwrap(api.POST('/api/v1/password-resets/preview', { body: { token } })),
    enabled: token.length > 0 && !done,
    staleTime: Number.POSITIVE_INFINITY,
  });
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
      await unwrap(api.POST('/api/v1/password-resets/complete', { body: { token, password } }));
      setDone(true);
      // If this browser was signed in as that person, that session has just ended.
      await refresh().catch(() => undefined);
    } catch (x) {
      setError(c.err(x));
    } finally {
      setBusy(false);
    }
  };

  let body: ReactNode;
  if (!token) body = <Notice kind="error">{t('public.noToken')}</Notice>;
  else if (done) {
    body = (
      <div className="stack" data-testid="reset-done">
        <Notice kind="ok">{t('reset.done')}</Notice>
        <Link to="/login" className="button primary" data-testid="reset-sign-in">
          {t('reset.signIn')}
        </Link>
      </div>
    );
  } else if (preview.isLoading) body = <Loading />;
  else if (preview.error) {
    const invalid = preview.error instanceof ApiError && preview.error.code === 'RESET_LINK_INVALID';
    body = (
      <>
        <Notice kind="error" testId="reset-invalid">
          {invalid ? t('reset.invalid') : c.err(preview.error)}
        </Notice>
        <Link to="/login">{t('public.home')}</Link>
      </>
    );
  } else if (preview.data) {
    const p = preview.data;
    body = (
      <form onSubmit={submit} data-testid="reset-form">
        <p className="muted" data-testid="reset-for">
          {t('reset.for', { name: p.display_name, username: p.username, time: c.date(p.expires_at ?? null) })}
        </p>
        {/* Lets a password manager file the new password under the right account. */}
        <input type="text" name="username" autoComplete="username" value={p.username} readOnly hidden />
        <NewPasswordFields
          password={password}
          confirm={confirm}
          onPassword={setPassword}
          onConfirm={setConfirm}
          label="field.newPassword"
        />
        {error && <Notice kind="error">{error}</Notice>}
        <button type="submit" className="primary wide" disabled={busy} data-testid="reset-submit">
          {t('reset.submit')}
        </button>
      </form>
    );
  }
  return (
    <PublicFrame testId="reset-page">
      <section className="card">
        <h1>{t('reset.title')}</h1>
        {body}
      </section>
    </PublicFrame>
  );
}
