import { useMutation } from '@tanstack/react-query';
import { Alert, Button, type ButtonProps, Modal, Popconfirm, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../api/client.js';
import { useI18n } from '../i18n/index.js';

/**
 * "Reset password" for an admin screen (operator people page, an organisation's members page): makes a
 * one-time link for the person to set a new password and shows it once, to copy. `orgId` names the
 * organisation a super admin acts for. The link is never kept: closing the dialog forgets it.
 */
export function ResetLinkButton({
  userId,
  name,
  orgId,
  size = 'small',
}: {
  userId: string;
  name: string;
  orgId?: string;
  size?: ButtonProps['size'];
}) {
  const { t } = useTranslation('account');
  const c = useI18n();
  const issue = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/users/{id}/password-reset', {
          params: { path: { id: userId } },
          body: orgId ? { org_id: orgId } : {},
        }),
      ),
  });
  const link = issue.data?.url;
  return (
    <>
      <Popconfirm
        title={t('resetLink.confirm', { name })}
        onConfirm={() => issue.mutate()}
        okButtonProps={{ 'data-testid': 'reset-link-confirm' } as ButtonProps}
      >
        <Button size={size} loading={issue.isPending} data-testid={`reset-link-${userId}`}>
          {t('resetLink.button')}
        </Button>
      </Popconfirm>
      {issue.error && <Alert type="error" showIcon message={c.err(issue.error)} style={{ marginTop: 8 }} />}
      <Modal
        open={Boolean(link)}
        title={t('resetLink.title', { name })}
        onCancel={() => issue.reset()}
        onOk={() => issue.reset()}
        okText={t('resetLink.close')}
        cancelButtonProps={{ style: { display: 'none' } }}
        destroyOnHidden
      >
        <Typography.Paragraph>{t('resetLink.body', { name, time: c.date(issue.data?.expires_at ?? null) })}</Typography.Paragraph>
        <Typography.Paragraph copyable={{ text: link }} code style={{ wordBreak: 'break-all' }} data-testid="reset-link">
          {link}
        </Typography.Paragraph>
      </Modal>
    </>
  );
}
