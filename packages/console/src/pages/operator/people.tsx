import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import {
  Alert,
  App,
  Button,
  Card,
  Checkbox,
  Descriptions,
  Drawer,
  Form,
  Input,
  Modal,
  Popconfirm,
  Space,
  Switch,
  Table,
  Tag,
  Typography,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import { ResetLinkButton } from '../../components/reset-link-button.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { useMe } from '../../session.js';
import { RoleName } from '../../ui.js';

interface Person {
  id: string;
  username: string;
  display_name: string;
  is_operator: boolean;
  disabled: boolean;
  created_at: string;
  last_login_at: string | null;
}

/** /operator/people — everyone on the instance: search, a person's organisations, disable/enable, reset links; self sign-up. */
export function Component() {
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <People />
      <SelfSignup />
    </Space>
  );
}

function People() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const me = useMe();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [q, setQ] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const list = useInfiniteQuery({
    queryKey: ['/api/v1/users', q],
    initialPageParam: '',
    queryFn: ({ pageParam }) =>
      unwrap(api.GET('/api/v1/users', { params: { query: { q: q || undefined, cursor: pageParam || undefined, limit: 50 } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const toggle = useMutation({
    mutationFn: (p: Person) =>
      unwrap(
        api.POST(p.disabled ? '/api/v1/users/{id}/enable' : '/api/v1/users/{id}/disable', { params: { path: { id: p.id } } }),
      ),
    onSuccess: (r, p) => {
      message.success(t(p.disabled ? 'people.enabledDone' : 'people.disabledDone', { name: p.display_name }));
      void qc.invalidateQueries({ queryKey: ['/api/v1/users'] });
      qc.setQueryData(['/api/v1/users', p.id], r);
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = (list.data?.pages.flatMap((p) => p.users ?? []) ?? []) as Person[];
  return (
    <Card
      title={t('people.title')}
      extra={
        <Button type="primary" onClick={() => setAdding(true)} data-testid="person-add">
          {t('people.add')}
        </Button>
      }
    >
      <Input.Search
        allowClear
        placeholder={t('people.search')}
        onSearch={(v) => setQ(v.trim())}
        style={{ maxWidth: 360, marginBottom: 12 }}
        data-testid="people-search"
        enterButton
      />
      {list.error && <Alert type="error" showIcon message={c.err(list.error)} />}
      <Table<Person>
        rowKey="id"
        size="middle"
        loading={list.isLoading}
        dataSource={rows}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('people.empty') }}
        data-testid="people-table"
        columns={[
          {
            title: t('people.name'),
            key: 'name',
            render: (_, p) => (
              <Space direction="vertical" size={0}>
                <Typography.Link onClick={() => setOpen(p.id)} data-testid={`person-${p.username}`}>
                  {p.display_name}
                </Typography.Link>
                <Typography.Text type="secondary">{p.username}</Typography.Text>
              </Space>
            ),
          },
          {
            title: t('people.status'),
            key: 'status',
            render: (_, p) => (
              <Space size={4} wrap>
                {p.is_operator && <Tag color="blue">{t('people.operator')}</Tag>}
                {p.disabled ? (
                  <Tag color="red" data-testid={`status-${p.username}`}>
                    {t('people.disabled')}
                  </Tag>
                ) : (
                  <Tag color="green" data-testid={`status-${p.username}`}>
                    {t('people.active')}
                  </Tag>
                )}
              </Space>
            ),
          },
          // Phones keep name, status and actions in view; the dates are in the detail drawer too.
          { title: t('people.lastLogin'), key: 'last', responsive: ['sm'], render: (_, p) => c.ago(p.last_login_at) },
          { title: t('people.created'), key: 'created', responsive: ['md'], render: (_, p) => c.date(p.created_at) },
          {
            title: t('people.actions'),
            key: 'actions',
            render: (_, p) => (
              <Space wrap>
                <ResetLinkButton userId={p.id} name={p.display_name} />
                {p.id !== me.user.id && (
                  <Popconfirm
                    title={t(p.disabled ? 'people.enableConfirm' : 'people.disableConfirm', { name: p.display_name })}
                    onConfirm={() => toggle.mutate(p)}
                    okButtonProps={withTestId('toggle-confirm', p.disabled ? {} : { danger: true })}
                  >
                    <Button size="small" danger={!p.disabled} data-testid={`toggle-${p.username}`}>
                      {p.disabled ? t('people.enable') : t('people.disable')}
                    </Button>
                  </Popconfirm>
                )}
              </Space>
            ),
          },
        ]}
      />
      {list.hasNextPage && (
        <Button style={{ marginTop: 12 }} onClick={() => list.fetchNextPage()} loading={list.isFetchingNextPage}>
          {t('people.more')}
        </Button>
      )}
      <PersonDrawer id={open} onClose={() => setOpen(null)} />
      <AddPerson open={adding} onClose={() => setAdding(false)} />
    </Card>
  );
}

interface NewPerson {
  username: string;
  display_name?: string;
  password: string;
  operator?: boolean;
}

/** An account made by an operator (people usually join by invitation); an operator account when ticked. */
function AddPerson({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [form] = Form.useForm<NewPerson>();
  const add = useMutation({
    mutationFn: (v: NewPerson) => {
      const body = { username: v.username.trim(), password: v.password, display_name: v.display_name?.trim() || undefined };
      return unwrap(v.operator ? api.POST('/api/v1/operators', { body }) : api.POST('/api/v1/users', { body }));
    },
    onSuccess: (_, v) => {
      message.success(t('people.added', { name: v.display_name?.trim() || v.username }));
      void qc.invalidateQueries({ queryKey: ['/api/v1/users'] });
      form.resetFields();
      onClose();
    },
  });
  return (
    <Modal
      open={open}
      title={t('people.add')}
      onCancel={onClose}
      onOk={() => form.submit()}
      confirmLoading={add.isPending}
      okButtonProps={withTestId('person-add-ok')}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" onFinish={(v) => add.mutate(v)} autoComplete="off">
        <Form.Item name="username" label={t('people.username')} rules={[{ required: true, pattern: /^[a-zA-Z0-9._@-]{3,64}$/ }]}>
          <Input autoComplete="off" data-testid="person-add-username" />
        </Form.Item>
        <Form.Item name="display_name" label={t('people.name')}>
          <Input maxLength={128} />
        </Form.Item>
        <Form.Item
          name="password"
          label={t('people.password')}
          extra={t('people.passwordHint')}
          rules={[{ required: true, min: 10 }]}
        >
          <Input.Password autoComplete="new-password" data-testid="person-add-password" />
        </Form.Item>
        <Form.Item name="operator" valuePropName="checked">
          <Checkbox>{t('people.makeOperator')}</Checkbox>
        </Form.Item>
        {add.error && <Alert type="error" showIcon message={c.err(add.error)} />}
      </Form>
    </Modal>
  );
}

function PersonDrawer({ id, onClose }: { id: string | null; onClose: () => void }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const person = useQuery({
    queryKey: ['/api/v1/users', id],
    queryFn: () => unwrap(api.GET('/api/v1/users/{id}', { params: { path: { id: id ?? '' } } })),
    enabled: id !== null,
  });
  const p = person.data;
  return (
    <Drawer
      open={id !== null}
      onClose={onClose}
      title={p?.display_name ?? ''}
      width={Math.min(520, window.innerWidth)}
      destroyOnHidden
    >
      {person.error && <Alert type="error" showIcon message={c.err(person.error)} />}
      {p && (
        <div data-testid="person-detail">
          <Descriptions column={1} size="small" bordered>
            <Descriptions.Item label={t('people.username')}>{p.username}</Descriptions.Item>
            <Descriptions.Item label={t('people.status')}>
              {p.disabled ? <Tag color="red">{t('people.disabled')}</Tag> : <Tag color="green">{t('people.active')}</Tag>}
              {p.is_operator && <Tag color="blue">{t('people.operator')}</Tag>}
            </Descriptions.Item>
            <Descriptions.Item label={t('people.created')}>{c.date(p.created_at ?? null)}</Descriptions.Item>
            <Descriptions.Item label={t('people.lastLogin')}>{c.date(p.last_login_at ?? null)}</Descriptions.Item>
            <Descriptions.Item label={t('people.sessions')}>{p.active_sessions}</Descriptions.Item>
            <Descriptions.Item label={t('people.tokens')}>{p.active_tokens}</Descriptions.Item>
          </Descriptions>
          <Typography.Title level={5} style={{ marginTop: 16 }}>
            {t('people.orgs')}
          </Typography.Title>
          <Table
            rowKey="id"
            size="small"
            pagination={false}
            dataSource={p.organisations ?? []}
            locale={{ emptyText: t('people.noOrgs') }}
            data-testid="person-orgs"
            columns={[
              { title: t('people.org'), dataIndex: 'name', key: 'name' },
              { title: t('people.role'), key: 'role', render: (_, o) => <RoleName role={o.role ?? null} /> },
              { title: t('people.department'), key: 'dept', render: (_, o) => o.department?.name },
            ]}
          />
        </div>
      )}
    </Drawer>
  );
}

/** The instance setting behind /signup; the hint says what the switch does where it stands. */
function SelfSignup() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const key = ['/api/v1/instance/settings'];
  const settings = useQuery({ queryKey: key, queryFn: () => unwrap(api.GET('/api/v1/instance/settings')) });
  const save = useMutation({
    mutationFn: (on: boolean) => unwrap(api.PATCH('/api/v1/instance/settings', { body: { self_signup: on } })),
    onSuccess: (r) => {
      qc.setQueryData(key, r);
      void qc.invalidateQueries({ queryKey: ['/api/v1/instance/public'] });
      message.success(t('people.signupSaved'));
    },
    onError: (e) => message.error(c.err(e)),
  });
  const on = save.isPending ? Boolean(save.variables) : Boolean(settings.data?.self_signup);
  return (
    <Card title={t('people.signupTitle')} loading={settings.isLoading}>
      {settings.error && <Alert type="error" showIcon message={c.err(settings.error)} />}
      <Space align="start" size="middle">
        <Switch
          checked={on}
          loading={save.isPending}
          onChange={(v) => save.mutate(v)}
          data-testid="self-signup"
          aria-label={t('people.signupTitle')}
        />
        <Typography.Text type="secondary" data-testid="self-signup-hint">
          {on ? t('people.signupOn') : t('people.signupOff')}
        </Typography.Text>
      </Space>
    </Card>
  );
}
