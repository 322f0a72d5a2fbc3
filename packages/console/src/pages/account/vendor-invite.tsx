import { useQuery } from '@tanstack/react-query';
import { type ReactNode, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { ApiError, api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { navigate } from '../../router.js';
import { useSession } from '../../session.js';
import { Loading, Notice } from '../../ui.js';
import { InviteAccept, InviteFrame, InviteHeadline, InviteSignedOut } from './invite-steps.js';

/** A vendor invitation's token starts with this (the server's VENDOR_INVITE_PREFIX). */
export const VENDOR_TOKEN_PREFIX = 'v.';

type Preview = Awaited<ReturnType<typeof loadPreview>>;
const loadPreview = (token: string) => unwrap(api.POST('/api/v1/vendor-invites/preview', { body: { token } }));

/**
 * /invite#v.<token>: an invitation into a vendor (issue 13). The /invite page hands a `v.` token to this;
 * the same steps as an organisation's: who invites to which vendor with which role; a new person creates
 * an account and joins, someone with an account signs in here and accepts; then on to the vendor's pages.
 */
export function VendorInvite({ token }: { token: string }) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { session } = useSession();
  const [joined, setJoined] = useState<{ id: string; name: string; role: string } | null>(null);
  const preview = useQuery({
    queryKey: ['vendor-invite-preview', token, session?.user.id ?? null],
    queryFn: () => loadPreview(token),
    enabled: session !== undefined && joined === null,
  });
  let body: ReactNode;
  if (joined) body = <Joined {...joined} />;
  else if (session === undefined || preview.isLoading) body = <Loading />;
  else if (preview.error instanceof ApiError && preview.error.code === 'INVITE_INVALID') {
    body = (
      <Notice kind="error" testId="invite-invalid">
        {t('invite.invalid')}
      </Notice>
    );
  } else if (preview.error) body = <Notice kind="error">{c.err(preview.error)}</Notice>;
  else if (preview.data) {
    const p = preview.data;
    const done = () => setJoined({ id: p.vendor.id, name: p.vendor.name, role: p.role });
    body = (
      <>
        <Summary p={p} />
        {session ? (
          <InviteAccept accept={() => unwrap(api.POST('/api/v1/vendor-invites/accept', { body: { token } }))} onJoined={done} />
        ) : (
          <InviteSignedOut
            initial="new"
            join={(body) => unwrap(api.POST('/api/v1/vendor-invites/accept', { body: { token, ...body } }))}
            onJoined={done}
          />
        )}
      </>
    );
  } else body = <Loading />;
  return <InviteFrame>{body}</InviteFrame>;
}

function Summary({ p }: { p: Preview }) {
  const { t } = useTranslation('account');
  const v = useTranslation('vendor');
  const c = useI18n();
  return (
    <div data-testid="invite-summary">
      <InviteHeadline by={p.invited_by?.display_name} to={p.vendor.name} />
      <dl className="facts">
        <dt>{t('invite.role')}</dt>
        <dd data-testid="invite-role">{v.t(`people.role.${p.role}`)}</dd>
        <dd className="muted">{v.t(`people.roleHint.${p.role}`)}</dd>
        <dt>{t('invite.expires')}</dt>
        <dd>{c.date(p.expires_at)}</dd>
      </dl>
    </div>
  );
}

function Joined({ id, name, role }: { id: string; name: string; role: string }) {
  const { t } = useTranslation('account');
  const v = useTranslation('vendor');
  return (
    <div className="stack" data-testid="invite-joined">
      <Notice kind="ok">{t('invite.joined', { org: name, role: v.t(`people.role.${role}` as never) })}</Notice>
      <button type="button" className="primary wide" onClick={() => navigate(`/vendors/${id}`)} data-testid="invite-continue">
        {t('invite.continue')}
      </button>
    </div>
  );
}
