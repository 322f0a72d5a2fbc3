import { useQuery } from '@tanstack/react-query';
import { type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { navigate } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice, RoleName } from '../../ui.js';
import { InviteAccept, InviteFrame, InviteHeadline, InviteSignedOut, InviteSignIn } from './invite-steps.js';
import { hashToken } from './public-frame.js';
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
            <InviteSignIn />
          </>
        )}
      </>
    );
  } else if (preview.data) {
    body = (
      <>
        <Summary p={preview.data} />
        <Steps token={token} p={preview.data} signedIn={session !== null} onJoined={setJoined} />
      </>
    );
  } else body = <Loading />;

  return <InviteFrame>{body}</InviteFrame>;
}

function Summary({ p }: { p: Preview }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  return (
    <div data-testid="invite-summary">
      <InviteHeadline by={p.invited_by?.display_name} to={p.organisation.name} />
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

/** Accepting an organisation's invitation: signed in, or first creating an account or signing in. */
function Steps({ token, p, signedIn, onJoined }: { token: string; p: Preview; signedIn: boolean; onJoined: OnJoined }) {
  const joined = () => onJoined({ org: p.organisation.name, orgId: p.organisation.id, role: p.role });
  if (signedIn)
    return <InviteAccept accept={() => unwrap(api.POST('/api/v1/invites/accept', { body: { token } }))} onJoined={joined} />;
  return (
    <InviteSignedOut
      initial={p.invitee ? 'existing' : 'new'}
      join={(body) => unwrap(api.POST('/api/v1/invites/accept', { body: { token, ...body } }))}
      onJoined={joined}
    />
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
