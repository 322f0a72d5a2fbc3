import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Card,
  Divider,
  Form,
  Grid,
  Input,
  Modal,
  Popconfirm,
  Radio,
  Select,
  Space,
  Table,
  Tag,
  Typography,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import type { Role } from '../../api.js';
import { DepartmentSelect, type Dept, deptName, useDepartments } from '../../components/department-tree.js';
import { ResetLinkButton } from '../../components/reset-link-button.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { orgRole } from '../../nav.js';
import { useMe } from '../../session.js';

interface Member {
  user_id: string;
  username: string;
  display_name: string;
  role: Role;
  department_id: string;
  scope: string[];
  joined_at: string;
}

interface Invite {
  id: string;
  role: Role;
  department_id: string;
  scope: string[];
  created_by_name?: string | null;
  created_at: string;
  expires_at: string;
  state: 'pending' | 'accepted' | 'revoked' | 'expired';
  invitee: string | null;
}

const ROLE_COLOR: Record<Role, string> = { super_admin: 'gold', device_admin: 'blue', member: 'default' };

/** Role and scope: what both the invite form and the edit form ask. */
function RoleFields({ depts, roles, role }: { depts: Dept[]; roles: Role[]; role: Role | undefined }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  return (
    <>
      <Form.Item name="role" label={t('members.role')} rules={[{ required: true }]}>
        <Select data-testid="member-role" options={roles.map((r) => ({ value: r, label: c.t(`role.${r}`) }))} />
      </Form.Item>
      <Form.Item name="department_id" label={t('members.department')} rules={[{ required: true }]}>
        <DepartmentSelect depts={depts} testId="member-department" />
      </Form.Item>
      {role === 'device_admin' && (
        <Form.Item
          name="scope"
          label={t('members.scope')}
          extra={t('members.scopeHint')}
          rules={[{ required: true, type: 'array', min: 1, message: t('members.scopeRequired') }]}
        >
          <DepartmentSelect depts={depts} multiple testId="member-scope" />
        </Form.Item>
      )}
    </>
  );
}

/** /orgs/:orgId/members — members with search, roles and scopes; invitations (links or to a username). */
export function MembersPage() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const me = useMe();
  const role = orgRole(me, orgId);
  const isSuper = role === 'super_admin';
  const phone = !Grid.useBreakpoint().md;
  const [q, setQ] = useState('');
  const [inviting, setInviting] = useState(false);
  const [editing, setEditing] = useState<Member | null>(null);
  const depts = useDepartments(orgId);
  const members = useQuery({
    queryKey: ['orgs', orgId, 'members', q],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/orgs/{orgId}/members', { params: { path: { orgId }, query: q ? { q } : {} } }))).members ??
        []) as Member[],
  });
  const invites = useQuery({
    queryKey: ['orgs', orgId, 'invites'],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/orgs/{orgId}/invites', { params: { path: { orgId } } }))).invites ?? []) as Invite[],
  });
  const refresh = () => {
    void qc.invalidateQueries({ queryKey: ['orgs', orgId, 'members'] });
    void qc.invalidateQueries({ queryKey: ['orgs', orgId, 'invites'] });
  };
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/orgs/{orgId}/invites/{id}', { params: { path: { orgId, id } } })),
    onSuccess: () => {
      message.success(t('members.revoked'));
      refresh();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const d = depts.data ?? [];
  const pending = (invites.data ?? []).filter((i) => i.state === 'pending');

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card
        title={t('members.title')}
        extra={
          <Button type="primary" onClick={() => setInviting(true)} data-testid="invite-open">
            {t('members.invite')}
          </Button>
        }
      >
        <Input.Search
          allowClear
          placeholder={t('members.search')}
          onSearch={(v) => setQ(v.trim())}
          style={{ maxWidth: 320, marginBottom: 12 }}
          data-testid="members-search"
        />
        {members.error && <Alert type="error" showIcon message={c.err(members.error)} />}
        <Table<Member>
          rowKey="user_id"
          size="middle"
          loading={members.isLoading}
          dataSource={members.data}
          pagination={{ pageSize: 20, hideOnSinglePage: true }}
          scroll={{ x: 'max-content' }}
          data-testid="members-table"
          columns={[
            {
              title: t('members.name'),
              key: 'name',
              render: (_, m) => (
                <div data-testid={`member-${m.username}`}>
                  <div>{m.display_name}</div>
                  <Typography.Text type="secondary">@{m.username}</Typography.Text>
                  {/* A phone has no room for the other columns: they follow the name. */}
                  {phone && (
                    <div style={{ marginTop: 4 }}>
                      <Tag color={ROLE_COLOR[m.role]}>{c.t(`role.${m.role}`)}</Tag>
                      <Typography.Text type="secondary">{deptName(d, m.department_id)}</Typography.Text>
                      {m.scope.length > 0 && (
                        <div>
                          {t('members.scope')}: {m.scope.map((id) => deptName(d, id)).join(', ')}
                        </div>
                      )}
                    </div>
                  )}
                </div>
              ),
            },
            ...(phone
              ? []
              : [
                  {
                    title: t('members.role'),
                    dataIndex: 'role',
                    render: (r: Role) => <Tag color={ROLE_COLOR[r]}>{c.t(`role.${r}`)}</Tag>,
                  },
                  { title: t('members.department'), dataIndex: 'department_id', render: (id: string) => deptName(d, id) },
                  {
                    title: t('members.scope'),
                    dataIndex: 'scope',
                    render: (s: string[]) => (s.length ? s.map((id) => <Tag key={id}>{deptName(d, id)}</Tag>) : '—'),
                  },
                  { title: t('members.joined'), dataIndex: 'joined_at', render: (v: string) => c.date(v) },
                ]),
            ...(isSuper
              ? [
                  {
                    title: '',
                    key: 'actions',
                    render: (_: unknown, m: Member) => (
                      // Remove and the password-reset link live in the edit dialog: one narrow column.
                      <Button size="small" type="link" onClick={() => setEditing(m)} data-testid={`member-edit-${m.username}`}>
                        {t('members.edit')}
                      </Button>
                    ),
                  },
                ]
              : []),
          ]}
        />
      </Card>

      <Card title={t('members.pending')} data-testid="invites-card">
        <Table<Invite>
          rowKey="id"
          size="small"
          loading={invites.isLoading}
          dataSource={pending}
          pagination={false}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: t('members.noPending') }}
          data-testid="invites-table"
          columns={[
            {
              title: t('members.invitee'),
              dataIndex: 'invitee',
              render: (v: string | null) => (v ? <Typography.Text strong>{v}</Typography.Text> : t('members.byLink')),
            },
            {
              title: t('members.role'),
              dataIndex: 'role',
              render: (r: Role) => <Tag color={ROLE_COLOR[r]}>{c.t(`role.${r}`)}</Tag>,
            },
            { title: t('members.department'), dataIndex: 'department_id', render: (id: string) => deptName(d, id) },
            { title: t('members.invitedBy'), dataIndex: 'created_by_name', render: (v: string | null) => v ?? '—' },
            { title: t('members.expires'), dataIndex: 'expires_at', render: (v: string) => c.date(v) },
            {
              title: '',
              key: 'revoke',
              render: (_, i) => (
                <Popconfirm
                  title={t('members.revokeConfirm')}
                  okText={t('members.revoke')}
                  okButtonProps={{ danger: true }}
                  onConfirm={() => revoke.mutate(i.id)}
                >
                  <Button size="small" danger data-testid={`invite-revoke-${i.invitee ?? i.id}`}>
                    {t('members.revoke')}
                  </Button>
                </Popconfirm>
              ),
            },
          ]}
        />
      </Card>

      {inviting && (
        <InviteModal
          orgId={orgId}
          depts={d}
          roles={isSuper ? ['member', 'device_admin', 'super_admin'] : ['member']}
          onClose={() => setInviting(false)}
          onDone={refresh}
        />
      )}
      {editing && (
        <EditModal
          orgId={orgId}
          depts={d}
          member={editing}
          onClose={() => setEditing(null)}
          onDone={() => {
            setEditing(null);
            refresh();
          }}
        />
      )}
    </Space>
  );
}

interface InviteForm {
  how: 'link' | 'user';
  username?: string;
  role: Role;
  department_id: string;
  scope?: string[];
}

function InviteModal({
  orgId,
  depts,
  roles,
  onClose,
  onDone,
}: {
  orgId: string;
  depts: Dept[];
  roles: Role[];
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const [form] = Form.useForm<InviteForm>();
  const how = Form.useWatch('how', form);
  const role = Form.useWatch('role', form);
  const [link, setLink] = useState<string | null>(null);
  const send = useMutation({
    mutationFn: async (v: InviteForm) => {
      const body = {
        role: v.role,
        department_id: v.department_id,
        ...(v.role === 'device_admin' ? { scope: v.scope } : {}),
      };
      if (v.how === 'user') {
        await unwrap(
          api.POST('/api/v1/orgs/{orgId}/members', {
            params: { path: { orgId } },
            body: { ...body, username: v.username?.trim() },
          }),
        );
        return null;
      }
      const r = await unwrap(api.POST('/api/v1/orgs/{orgId}/invites', { params: { path: { orgId } }, body }));
      return r.url;
    },
    onSuccess: (url, v) => {
      onDone();
      if (url) setLink(url);
      else {
        message.success(t('members.sentTo', { name: v.username?.trim() ?? '' }));
        onClose();
      }
    },
  });
  const root = depts.find((d) => d.parent_id === null)?.id;
  return (
    <Modal
      open
      title={t('members.invite')}
      onCancel={onClose}
      destroyOnHidden
      footer={
        link
          ? [
              <Button key="done" type="primary" onClick={onClose} data-testid="invite-done">
                {c.t('common.done')}
              </Button>,
            ]
          : undefined
      }
      okText={how === 'user' ? t('members.sendInvite') : t('members.createLink')}
      okButtonProps={withTestId('invite-submit', { loading: send.isPending })}
      onOk={() => form.submit()}
    >
      {link ? (
        <Space direction="vertical" style={{ width: '100%' }} data-testid="invite-link-box">
          <Alert type="success" showIcon message={t('members.linkOnce')} />
          <Typography.Paragraph copyable={{ text: link }} code style={{ wordBreak: 'break-all' }} data-testid="invite-link">
            {link}
          </Typography.Paragraph>
          <Typography.Text type="secondary">{t('members.linkHint')}</Typography.Text>
        </Space>
      ) : (
        <Form<InviteForm>
          form={form}
          layout="vertical"
          initialValues={{ how: 'link', role: 'member', department_id: root }}
          onFinish={(v) => send.mutate(v)}
        >
          <Form.Item name="how">
            <Radio.Group data-testid="invite-how">
              <Radio.Button value="link" data-testid="invite-how-link">
                {t('members.howLink')}
              </Radio.Button>
              <Radio.Button value="user" data-testid="invite-how-user">
                {t('members.howUser')}
              </Radio.Button>
            </Radio.Group>
          </Form.Item>
          {how === 'user' && (
            <Form.Item
              name="username"
              label={t('members.username')}
              extra={t('members.usernameHint')}
              rules={[{ required: true, whitespace: true }]}
            >
              <Input autoComplete="off" data-testid="invite-username" />
            </Form.Item>
          )}
          <RoleFields depts={depts} roles={roles} role={role} />
          {send.error && <Alert type="error" showIcon message={c.err(send.error)} data-testid="invite-error" />}
        </Form>
      )}
    </Modal>
  );
}

function EditModal({
  orgId,
  depts,
  member,
  onClose,
  onDone,
}: {
  orgId: string;
  depts: Dept[];
  member: Member;
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ role: Role; department_id: string; scope?: string[] }>();
  const role = Form.useWatch('role', form);
  const save = useMutation({
    mutationFn: (v: { role: Role; department_id: string; scope?: string[] }) =>
      unwrap(
        api.PATCH('/api/v1/orgs/{orgId}/members/{userId}', {
          params: { path: { orgId, userId: member.user_id } },
          body: { role: v.role, department_id: v.department_id, ...(v.role === 'device_admin' ? { scope: v.scope } : {}) },
        }),
      ),
    onSuccess: () => {
      message.success(t('members.saved'));
      onDone();
    },
  });
  const remove = useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/api/v1/orgs/{orgId}/members/{userId}', { params: { path: { orgId, userId: member.user_id } } })),
    onSuccess: () => {
      message.success(t('members.removed'));
      onDone();
    },
  });
  return (
    <Modal
      open
      title={t('members.editTitle', { name: member.display_name })}
      onCancel={onClose}
      okText={c.t('common.save')}
      okButtonProps={withTestId('member-save', { loading: save.isPending })}
      onOk={() => form.submit()}
      destroyOnHidden
    >
      <Form
        form={form}
        layout="vertical"
        initialValues={{
          role: member.role,
          department_id: member.department_id,
          scope: member.scope.length ? member.scope : [member.department_id],
        }}
        onFinish={(v) => save.mutate(v)}
      >
        <RoleFields depts={depts} roles={['member', 'device_admin', 'super_admin']} role={role} />
        {save.error && <Alert type="error" showIcon message={c.err(save.error)} data-testid="member-error" />}
      </Form>
      <Divider style={{ margin: '8px 0 16px' }} />
      <Space wrap>
        {/* A one-time link the admin hands over; the server refuses it for operators. */}
        <ResetLinkButton userId={member.user_id} name={member.display_name} orgId={orgId} />
        <Popconfirm
          title={t('members.removeConfirm', { name: member.display_name })}
          okText={t('members.remove')}
          okButtonProps={withTestId('member-remove-ok', { danger: true })}
          onConfirm={() => remove.mutate()}
        >
          <Button size="small" danger loading={remove.isPending} data-testid="member-remove">
            {t('members.remove')}
          </Button>
        </Popconfirm>
      </Space>
      {remove.error && (
        <Alert type="error" showIcon message={c.err(remove.error)} style={{ marginTop: 12 }} data-testid="member-remove-error" />
      )}
    </Modal>
  );
}

export const Component = MembersPage;
