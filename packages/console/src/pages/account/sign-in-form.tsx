import { type FormEvent, type ReactNode, useState } from 'react';
import { useI18n } from '../../i18n/index.js';
import { useSession } from '../../session.js';
import { Notice } from '../../ui.js';

/**
 * Username and password, signed in on submit: the sign-in page's form and the one an invitation page
 * shows to someone who already has an account. Common words only: the sign-in page is on the phone's
 * way to a bind, where no other namespace loads.
 */
export function SignInForm({
  onSignedIn,
  submitLabel,
  head,
  className,
  testId,
  submitTestId,
}: {
  onSignedIn?: () => void;
  submitLabel: string;
  head?: ReactNode;
  className?: string;
  testId?: string;
  submitTestId?: string;
}) {
  const { t, err } = useI18n();
  const { login } = useSession();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(username.trim(), password);
      onSignedIn?.();
    } catch (x) {
      setError(err(x));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className={className} onSubmit={submit} data-testid={testId}>
      {head}
      <label>
        {t('login.username')}
        <input
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
          required
        />
      </label>
      <label>
        {t('login.password')}
        <input
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          required
        />
      </label>
      {error && <Notice kind="error">{error}</Notice>}
      <button type="submit" className="primary wide" disabled={busy} data-testid={submitTestId}>
        {submitLabel}
      </button>
    </form>
  );
}
