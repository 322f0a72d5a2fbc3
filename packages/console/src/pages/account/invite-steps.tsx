import { type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useI18n } from '../../i18n/index.js';
import { useSession } from '../../session.js';
import { Notice } from '../../ui.js';
import { type NewAccountBody, NewAccountFields, PublicFrame, useNewAccountForm } from './public-frame.js';
import { SignInForm } from './sign-in-form.js';

/**
 * The steps an invitation page takes, the same for an organisation's (invite.tsx) and a vendor's
 * (vendor-invite.tsx): each page says what the invitation is and which endpoint accepts it.
 */

/** The invitation page's frame around the step the invitation is at. */
export function InviteFrame({ children }: { children: ReactNode }) {
  const { t } = useTranslation('account');
  return (
    <PublicFrame testId="invite-page">
      <section className="card">
        <h1>{t('invite.title')}</h1>
        {children}
      </section>
    </PublicFrame>
  );
}

/** The invitation's first line: who invites to which organisation or vendor. */
export function InviteHeadline({ by, to }: { by: string | null | undefined; to: string }) {
  const { t } = useTranslation('account');
  return (
    <p>
      <strong>{by ? t('invite.summary', { by, org: to }) : t('invite.summaryNoBy', { org: to })}</strong>
    </p>
  );
}

/** Signed in: accept as yourself (or sign out, when this is someone else's invitation). */
export function InviteAccept({ accept, onJoined }: { accept: () => Promise<unknown>; onJoined: () => void }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { session, logout, refresh } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!session) return null;
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await accept();
      // The session now carries the new membership (nav, roles) before the next page opens.
      await refresh();
      onJoined();
    } catch (e) {
      setError(c.err(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="stack">
      <p className="muted">
        {t('invite.signedInAs', { name: session.user.display_name, username: session.user.username })}{' '}
        <button type="button" className="link-btn" onClick={() => void logout()} data-testid="invite-sign-out">
          {t('invite.notYou')}
        </button>
      </p>
      {error && <Notice kind="error">{error}</Notice>}
      <button type="button" className="primary wide" onClick={run} disabled={busy} data-testid="invite-accept">
        {t('invite.accept')}
      </button>
    </div>
  );
}

/** Signed out: a new person creates an account and joins in one step, or an existing one signs in first. */
export function InviteSignedOut({
  initial,
  join,
  onJoined,
}: {
  initial: 'new' | 'existing';
  join: (body: NewAccountBody) => Promise<unknown>;
  onJoined: () => void;
}) {
  const { t } = useTranslation('account');
  const [mode, setMode] = useState(initial);
  return (
    <div className="stack">
      <div className="row">
        <button
          type="button"
          className={mode === 'new' ? 'primary small' : 'small'}
          onClick={() => setMode('new')}
          data-testid="invite-mode-new"
        >
          {t('invite.newPerson')}
        </button>
        <button
          type="button"
          className={mode === 'existing' ? 'primary small' : 'small'}
          onClick={() => setMode('existing')}
          data-testid="invite-mode-existing"
        >
          {t('invite.haveAccount')}
        </button>
      </div>
      {mode === 'new' ? <JoinForm join={join} onJoined={onJoined} /> : <InviteSignIn />}
    </div>
  );
}

function JoinForm({ join, onJoined }: { join: (body: NewAccountBody) => Promise<unknown>; onJoined: () => void }) {
  const { t } = useTranslation('account');
  const form = useNewAccountForm(join, onJoined);
  return (
    <form onSubmit={form.submit} data-testid="invite-join-form">
      <NewAccountFields value={form.value} onChange={form.setValue} />
      {form.error && <Notice kind="error">{form.error}</Notice>}
      <button type="submit" className="primary wide" disabled={form.busy} data-testid="invite-join">
        {t('invite.join')}
      </button>
    </form>
  );
}

/** Signs in on this page; the invitation then shows again for the signed-in person (its query re-runs). */
export function InviteSignIn() {
  const { t } = useTranslation('account');
  return <SignInForm testId="invite-sign-in-form" submitTestId="invite-sign-in" submitLabel={t('invite.signIn')} />;
}
