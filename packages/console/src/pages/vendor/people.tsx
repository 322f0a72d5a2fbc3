import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Form, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import type { VendorRole } from '../../nav.js';
import { useMe } from '../../session.js';

interface Member {
  user_id: string;
  username: string;
  display_name: string;
  role: VendorRole;
  created_at: string;
}

interface Invite {
  id: string;
  role: VendorRole;
  created_by_name: string | null;
  created_at: string;
  expires_at: string;
  state: 'pending' | 'accepted' | 'revoked' | 'expired';
}

const ROLES: VendorRole[] = ['vendor_admin', 'engineer', 'production'];
const ROLE_COLOR: Record<VendorRole, string> = { vendor_admin: 'gold', engineer: 'blue', production: 'green' };

/** /vendors/:vendorId/people — the vendor's people and roles; invitation links (shown once) and their revocation. */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const me = useMe();
  const [inviting, setInviting] = useState(false);
  const members = useQuery({
    queryKey: ['vendors', vendorId, 'members'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/vendors/{vendorId}/members', { params: { path: { vendorId } } }))).members as Member[],
  });
  const invites = useQuery({
    queryKey: ['vendors', vendorId, 'invites'],
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/vendors/{vendorId}/invites', { params: { path: { vendorId } } }))).invites as Invite[],
  });
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'members'] });
    void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'invites'] });
  };
  const setRole = useMutation({
    mutationFn: (v: { userId: string; role: VendorRole }) =>
      unwrap(
        api.PATCH('/api/v1/vendors/{vendorId}/members/{userId}', {
          params: { path: { vendorId, userId: v.userId } },
          body: { role: v.role },
        }),
      ),
    onSuccess: () => {
      message.success(t('people.roleChanged'));
      refresh();
    },
    onError: (e) => {
      message.error(c.err(e));
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: (userId: string) =>
      unwrap(api.DELETE('/api/v1/vendors/{vendorId}/members/{userId}', { params: { path: { vendorId, userId } } })),
    onSuccess: () => {
      message.success(t('people.removed'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const revoke = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/vendors/{vendorId}/invites/{id}', { params: { path: { vendorId, id } } })),
    onSuccess: () => {
      message.success(t('people.revoked'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const pending = (invites.data ?? []).filter((i) => i.state === 'pending');
  const roleTag = (r: VendorRole) => <Tag color={ROLE_COLOR[r]}>{t(`people.role.${r}`)}</Tag>;

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={t('people.title')}
        extra={
          <Button type="primary" onClick={() => setInviting(true)} data-testid="vinvite-open">
            {t('people.invite')}
          </Button>
        }
      >
        <Typography.Paragraph type="secondary">{t('people.hint')}</Typography.Paragraph>
        {members.error && <Alert type="error" showIcon message={c.err(members.error)} />}
        <Table<Member>
          rowKey="user_id"
          size="middle"
          loading={members.isLoading}
          dataSource={members.data}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: t('people.none') }}
          data-testid="vmembers-table"
          columns={[
            {
              title: t('people.name'),
              key: 'name',
              render: (_, m) => (
                <div data-testid={`vmember-${m.username}`}>
                  <div>{m.display_name}</div>
                  <Typography.Text type="secondary">@{m.username}</Typography.Text>
                </div>
              ),
            },
            {
              title: t('people.roleCol'),
              key: 'role',
              render: (_, m) =>
                m.user_id === me.user.id ? (
                  roleTag(m.role)
                ) : (
                  <Select<VendorRole>
                    size="small"
                    value={m.role}
                    style={{ minWidth: 140 }}
                    onChange={(role) => setRole.mutate({ userId: m.user_id, role })}
                    options={ROLES.map((r) => ({ value: r, label: t(`people.role.${r}`) }))}
                    data-testid={`vmember-role-${m.username}`}
                  />
                ),
            },
            { title: t('people.joined'), dataIndex: 'created_at', render: (v: string) => c.date(v) },
            {
              title: '',
              key: 'actions',
              render: (_, m) => (
                <Popconfirm
                  title={t('people.removeConfirm', { name: m.display_name })}
                  okText={t('people.remove')}
                  okButtonProps={withTestId('vmember-remove-ok', { danger: true })}
                  onConfirm={() => remove.mutate(m.user_id)}
                >
                  <Button size="small" danger data-testid={`vmember-remove-${m.username}`}>
                    {t('people.remove')}
                  </Button>
                </Popconfirm>
              ),
            },
          ]}
        />
      </Card>

      <Card title={t('people.pending')} data-testid="vinvites-card">
        <Table<Invite>
          rowKey="id"
          size="small"
          loading={invites.isLoading}
          dataSource={pending}
          pagination={false}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: t('people.noPending') }}
          data-testid="vinvites-table"
          columns={[
            { title: t('people.roleCol'), dataIndex: 'role', render: (r: VendorRole) => roleTag(r) },
            { title: t('people.invitedBy'), dataIndex: 'created_by_name', render: (v: string | null) => v ?? '—' },
            { title: t('people.created'), dataIndex: 'created_at', render: (v: string) => c.date(v) },
            { title: t('people.expires'), dataIndex: 'expires_at', render: (v: string) => c.date(v) },
            {
              title: '',
              key: 'revoke',
              render: (_, i) => (
                <Popconfirm
                  title={t('people.revokeConfirm')}
                  okText={t('people.revoke')}
                  okButtonProps={withTestId('vinvite-revoke-ok', { danger: true })}
                  onConfirm={() => revoke.mutate(i.id)}
                >
                  <Button size="small" danger data-testid={`vinvite-revoke-${i.id}`}>
                    {t('people.revoke')}
                  </Button>
                </Popconfirm>
              ),
            },
          ]}
        />
      </Card>

      {inviting && <InviteModal vendorId={vendorId} onClose={() => setInviting(false)} onDone={refresh} />}
    </Space>
  );
}

/** Choose a role, get the link once (with a copy button); the token is only ever in the link's fragment. */
function InviteModal({ vendorId, onClose, onDone }: { vendorId: string; onClose: () => void; onDone: () => void }) {
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const [form] = Form.useForm<{ role: VendorRole }>();
  const role = Form.useWatch('role', form) ?? 'engineer';
  const [link, setLink] = useState<string | null>(null);
  const send = useMutation({
    mutationFn: async (v: { role: VendorRole }) =>
      (await unwrap(api.POST('/api/v1/vendors/{vendorId}/invites', { params: { path: { vendorId } }, body: { role: v.role } })))
        .url,
    onSuccess: (url) => {
      onDone();
      setLink(url);
    },
  });
  return (
    <Modal
      open
      title={t('people.invite')}
      onCancel={onClose}
      destroyOnHidden
      okText={t('people.createLink')}
      okButtonProps={withTestId('vinvite-submit', { loading: send.isPending })}
      onOk={() => form.submit()}
      footer={
        link
          ? [
              <Button key="done" type="primary" onClick={onClose} data-testid="vinvite-done">
                {c.t('common.done')}
              </Button>,
            ]
          : undefined
      }
    >
      {link ? (
        <Space direction="vertical" style={{ width: '100%' }} data-testid="vinvite-link-box">
          <Alert type="success" showIcon message={t('people.linkOnce')} />
          <Typography.Paragraph copyable={{ text: link }} code style={{ wordBreak: 'break-all' }} data-testid="vinvite-link">
            {link}
          </Typography.Paragraph>
          <Typography.Text type="secondary">{t('people.linkHint')}</Typography.Text>
        </Space>
      ) : (
        <Form<{ role: VendorRole }>
          form={form}
          layout="vertical"
          initialValues={{ role: 'engineer' }}
          onFinish={(v) => send.mutate(v)}
        >
          <Form.Item name="role" label={t('people.roleCol')} rules={[{ required: true }]}>
            <Select<VendorRole>
              data-testid="vinvite-role"
              options={ROLES.map((r) => ({ value: r, label: t(`people.role.${r}`) }))}
            />
          </Form.Item>
          <Typography.Paragraph type="secondary" data-testid="vinvite-role-hint">
            {t(`people.roleHint.${role}`)}
          </Typography.Paragraph>
          {send.error && <Alert type="error" showIcon message={c.err(send.error)} data-testid="vinvite-error" />}
        </Form>
      )}
    </Modal>
  );
}
