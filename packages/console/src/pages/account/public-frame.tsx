import { type FormEvent, type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useI18n } from '../../i18n/index.js';
import { useSession } from '../../session.js';

/**
 * The frame of the pages people open before (or while) signing in: invitation, password reset,
 * sign-up. Light like the sign-in page (no Ant Design): they are opened from a phone as often as not.
 */
export function PublicFrame({ children, testId }: { children: ReactNode; testId: string }) {
  const { t, lang, setLang } = useI18n();
  return (
    <main className="page narrow login" data-testid={testId}>
      <div className="login-head">
        <a href="/devices" className="brand">
          Bindery
        </a>
        <button type="button" className="link-btn" onClick={() => setLang(lang === 'zh' ? 'en' : 'zh')} data-testid="lang">
          {t('lang.switch')}
        </button>
      </div>
      {children}
    </main>
  );
}

/**
 * The token of an invitation or reset link. It rides in the URL fragment, which the browser never
 * sends to a server, and goes to the API in a request body only.
 */
export function hashToken(): string {
  return decodeURIComponent(window.location.hash.replace(/^#/, '')).trim();
}

export const MIN_PASSWORD = 10;

/** The client-side checks of a new password (the server checks again): an account-namespace key, or null. */
export function passwordProblem(password: string, confirm: string): 'check.short' | 'check.mismatch' | null {
  if (password.length < MIN_PASSWORD) return 'check.short';
  if (password !== confirm) return 'check.mismatch';
  return null;
}

/**
 * A new password and its confirmation, as every account form asks them (sign-up, invitations, a reset
 * link, the account page); `name` is the password field's form name.
 */
export function NewPasswordFields({
  password,
  confirm,
  onPassword,
  onConfirm,
  name = 'password',
  label = 'field.password',
}: {
  password: string;
  confirm: string;
  onPassword: (v: string) => void;
  onConfirm: (v: string) => void;
  name?: string;
  label?: 'field.password' | 'field.newPassword';
}) {
  const { t } = useTranslation('account');
  return (
    <>
      <label>
        {t(label)}
        <input
          name={name}
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => onPassword(e.target.value)}
          required
        />
        <span className="hint">{t('field.passwordHint')}</span>
      </label>
      <label>
        {t('field.confirmPassword')}
        <input
          name="confirm"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={(e) => onConfirm(e.target.value)}
          required
        />
      </label>
    </>
  );
}

export interface NewAccount {
  name: string;
  username: string;
  password: string;
  confirm: string;
}

/** Display name, username and a new password: what a new person fills in (sign-up, an invitation). */
export function NewAccountFields({ value, onChange }: { value: NewAccount; onChange: (v: NewAccount) => void }) {
  const { t } = useTranslation('account');
  const set = (k: keyof NewAccount) => (v: string) => onChange({ ...value, [k]: v });
  return (
    <>
      <label>
        {t('field.displayName')}
        <input
          name="display_name"
          autoComplete="name"
          value={value.name}
          onChange={(e) => set('name')(e.target.value)}
          required
        />
      </label>
      <label>
        {t('field.username')}
        <input
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          value={value.username}
          onChange={(e) => set('username')(e.target.value)}
          required
        />
        <span className="hint">{t('field.usernameHint')}</span>
      </label>
      <NewPasswordFields
        password={value.password}
        confirm={value.confirm}
        onPassword={set('password')}
        onConfirm={set('confirm')}
      />
    </>
  );
}

/** What an account form sends: trimmed username and display name (left out when empty), the password. */
export interface NewAccountBody {
  username: string;
  password: string;
  display_name?: string;
}

/**
 * The state and submit of a form that creates an account (sign-up, an organisation's or a vendor's
 * invitation): checks the password pair, sends, refreshes the session, then `done`; a refusal in words.
 */
export function useNewAccountForm(send: (body: NewAccountBody) => Promise<unknown>, done: () => void) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { refresh } = useSession();
  const [value, setValue] = useState<NewAccount>({ name: '', username: '', password: '', confirm: '' });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problem = passwordProblem(value.password, value.confirm);
    if (problem) return setError(t(problem));
    setBusy(true);
    setError(null);
    try {
      const name = value.name.trim();
      await send({ username: value.username.trim(), password: value.password, ...(name ? { display_name: name } : {}) });
      await refresh();
      done();
    } catch (x) {
      setError(c.err(x));
    } finally {
      setBusy(false);
    }
  };
  return { value, setValue, error, busy, submit };
}
