import { useQuery } from '@tanstack/react-query';
import { type FormEvent, type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { navigate } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice, RoleName } from '../../ui.js';
import { hashToken, NewAccountFields, PublicFrame, useNewAccountForm } from './public-frame.js';
import { VendorInvite } from './vendor-invite.js';

type Preview = NonNullable<Awaited<ReturnType<typeof loadPreview>>>;

const loadPreview = (token: string) => unwrap(api.POST('/api/v1/invites/preview', { body: { token } }));

/**
 * /invite#<token>: who invites whom to what. A new person creates an account and joins; someone with
 * an account signs in here (the token stays in this page, never in a sign-in URL) and accepts.
 * Invitations addressed to one person open only once that person is signed in.
 */
export function Component() {
  // One link page for both kinds of invitation: a vendor's (tokens `v.…`, issue 13) and an organisation's.
  const [token] = useState(hashToken);
  return token.startsWith('v.') ? <VendorInvite token={token} /> : <OrgInvite />;
}

function OrgInvite() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { session } = useSession();
  const [token] = useState(hashToken);
  const [joined, setJoined] = useState<{ org: string; orgId: string; role: string } | null>(null);
  const preview = useQuery({
    queryKey: ['invite-preview', token, session?.user.id ?? null],
    queryFn: () => loadPreview(token),
    enabled: token.length > 0 && session !== undefined && joined === null,
  });

  let body: ReactNode;
  if (!token) body = <Notice kind="error">{t('public.noToken')}</Notice>;
  else if (joined) body = <Joined {...joined} />;
  else if (session === undefined || preview.isLoading) body = <Loading />;
  else if (preview.error && !(preview.error instanceof ApiError && preview.error.code === 'INVITE_INVALID')) {
    body = <Notice kind="error">{c.err(preview.error)}</Notice>;
  } else if (preview.error) {
    body = (
      <>
        <Notice kind="error" testId="invite-invalid">
          {t('invite.invalid')}
        </Notice>
        {session === null && (
          <>
            <p className="muted">{t('invite.invalidSignedOut')}</p>
            <SignInForm />
          </>
        )}
      </>
    );
  } else if (preview.data) {
    body = (
      <>
        <Summary p={preview.data} />
        {session ? (
          <Accept token={token} p={preview.data} onJoined={setJoined} />
        ) : (
          <SignedOut token={token} p={preview.data} onJoined={setJoined} />
        )}
      </>
    );
  } else body = <Loading />;

  return (
    <PublicFrame testId="invite-page">
      <section className="card">
        <h1>{t('invite.title')}</h1>
        {body}
      </section>
    </PublicFrame>
  );
}

function Summary({ p }: { p: Preview }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  return (
    <div data-testid="invite-summary">
      <p>
        <strong>
          {p.invited_by?.display_name
            ? t('invite.summary', { by: p.invited_by.display_name, org: p.organisation.name })
            : t('invite.summaryNoBy', { org: p.organisation.name })}
        </strong>
      </p>
      <dl className="facts">
        {p.invitee && (
          <>
            <dt>{t('invite.for')}</dt>
            <dd>
              {p.invitee.display_name} ({p.invitee.username})
            </dd>
          </>
        )}
        <dt>{t('invite.role')}</dt>
        <dd data-testid="invite-role">
          <RoleName role={p.role} />
        </dd>
        <dt>{t('invite.department')}</dt>
        <dd>{p.department.name}</dd>
        {p.scope.length > 0 && (
          <>
            <dt>{t('invite.scope')}</dt>
            <dd>{p.scope.map((d) => d.name).join(', ')}</dd>
          </>
        )}
        <dt>{t('invite.expires')}</dt>
        <dd>{c.date(p.expires_at)}</dd>
      </dl>
    </div>
  );
}

type OnJoined = (j: { org: string; orgId: string; role: string }) => void;

function Accept({ token, p, onJoined }: { token: string; p: Preview; onJoined: OnJoined }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { session, logout, refresh } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!session) return null;
  const accept = async () => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/invites/accept', { body: { token } }));
      await refresh();
      onJoined({ org: p.organisation.name, orgId: p.organisation.id, role: p.role });
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
      <button type="button" className="primary wide" onClick={accept} disabled={busy} data-testid="invite-accept">
        {t('invite.accept')}
      </button>
    </div>
  );
}

/** Signed out: a new person creates an account and joins in one step, or an existing one signs in first. */
function SignedOut({ token, p, onJoined }: { token: string; p: Preview; onJoined: OnJoined }) {
  const { t } = useTranslation('account');
  const [mode, setMode] = useState<'new' | 'existing'>(p.invitee ? 'existing' : 'new');
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
      {mode === 'new' ? <JoinForm token={token} p={p} onJoined={onJoined} /> : <SignInForm />}
    </div>
  );
}

function JoinForm({ token, p, onJoined }: { token: string; p: Preview; onJoined: OnJoined }) {
  const { t } = useTranslation('account');
  const form = useNewAccountForm(
    (body) => unwrap(api.POST('/api/v1/invites/accept', { body: { token, ...body } })),
    () => onJoined({ org: p.organisation.name, orgId: p.organisation.id, role: p.role }),
  );
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
export function SignInForm() {
  const { t } = useTranslation('account');
  const c = useI18n();
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
    } catch (x) {
      setError(c.err(x));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} data-testid="invite-sign-in-form">
      <label>
        {t('field.username')}
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
        {t('field.password')}
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
      <button type="submit" className="primary wide" disabled={busy} data-testid="invite-sign-in">
        {t('invite.signIn')}
      </button>
    </form>
  );
}

function Joined({ org, orgId, role }: { org: string; orgId: string; role: string }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const admin = role === 'super_admin' || role === 'device_admin';
  return (
    <div className="stack" data-testid="invite-joined">
      <Notice kind="ok">{t('invite.joined', { org, role: c.t(`role.${role}` as never) })}</Notice>
      <button type="button" className="primary wide" onClick={() => navigate(admin ? `/orgs/${orgId}` : '/devices')}>
        {t('invite.continue')}
      </button>
    </div>
  );
}
