import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Form, Input, Modal, Select, Space, Switch, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';

/** Every IANA zone the browser knows (Intl), for the organisation's time zone. */
const ZONES: string[] = (Intl as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? ['UTC'];

interface Application {
  id: string;
  app_key: string;
  name: string;
  admins: string[];
}

interface MemberName {
  user_id: string;
  username: string;
  display_name: string;
}

/** /orgs/:orgId/settings — member binding, the time zone, and the organisation's applications with their admins. */
export function SettingsPage() {
  const { orgId = '' } = useParams();
  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <MemberBinding orgId={orgId} />
      <TimeZone orgId={orgId} />
      <Applications orgId={orgId} />
    </Space>
  );
}

function MemberBinding({ orgId }: { orgId: string }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const org = useQuery({
    queryKey: ['orgs', orgId],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}', { params: { path: { orgId } } })),
  });
  const [savedAt, setSavedAt] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (on: boolean) =>
      unwrap(api.PATCH('/api/v1/orgs/{orgId}/settings', { params: { path: { orgId } }, body: { member_binding: on } })),
    onSuccess: (r) => {
      qc.setQueryData(['orgs', orgId], (old: typeof org.data) => ({ ...old, organisation: r.organisation }));
      setSavedAt(new Date().toISOString());
      message.success(t('settings.saved'));
    },
    onError: (e) => message.error(c.err(e)),
  });
  const on = save.isPending ? Boolean(save.variables) : Boolean(org.data?.organisation?.member_binding);
  return (
    <Card title={t('settings.title')} loading={org.isLoading}>
      {org.error && <Alert type="error" showIcon message={c.err(org.error)} />}
      <Space align="start" size="middle">
        <Switch
          checked={on}
          loading={save.isPending}
          onChange={(v) => save.mutate(v)}
          data-testid="member-binding"
          aria-label={t('settings.memberBinding')}
        />
        <div>
          <Typography.Text strong>{t('settings.memberBinding')}</Typography.Text>
          {/* The hint says what the switch does in its current position. */}
          <div data-testid="member-binding-hint">
            <Typography.Text type="secondary">
              {on ? t('settings.memberBindingOn') : t('settings.memberBindingOff')}
            </Typography.Text>
          </div>
          {savedAt && !save.isPending && (
            <Typography.Text type="success" data-testid="member-binding-saved">
              {t('settings.savedAt', { time: c.date(savedAt) })}
            </Typography.Text>
          )}
        </div>
      </Space>
    </Card>
  );
}

/** The organisation's time zone: where its devices' maintenance windows are read (empty = the instance's). */
function TimeZone({ orgId }: { orgId: string }) {
  const { t } = useTranslation('campaigns');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const org = useQuery({
    queryKey: ['orgs', orgId],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}', { params: { path: { orgId } } })),
  });
  const save = useMutation({
    mutationFn: (time_zone: string | null) =>
      unwrap(api.PATCH('/api/v1/orgs/{orgId}/settings', { params: { path: { orgId } }, body: { time_zone } })),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: ['orgs', orgId] });
      message.success(t('campaigns.tzSaved'));
    },
    onError: (e) => message.error(c.err(e)),
  });
  return (
    <Card title={t('campaigns.tzLabel')} loading={org.isLoading}>
      <Space direction="vertical" size="small">
        <Select
          showSearch
          allowClear
          style={{ minWidth: 280 }}
          value={org.data?.organisation?.time_zone ?? undefined}
          placeholder={t('campaigns.tzInstance')}
          loading={save.isPending}
          onChange={(v?: string) => save.mutate(v ?? null)}
          options={ZONES.map((z) => ({ value: z, label: z }))}
          data-testid="org-time-zone"
          aria-label={t('campaigns.tzLabel')}
        />
        <Typography.Text type="secondary">{t('campaigns.tzHelp')}</Typography.Text>
      </Space>
    </Card>
  );
}

function Applications({ orgId }: { orgId: string }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const qc = useQueryClient();
  const [editing, setEditing] = useState<Application | 'new' | null>(null);
  const [origins, setOrigins] = useState<Application | null>(null);
  const apps = useQuery({
    queryKey: ['orgs', orgId, 'applications'],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/orgs/{orgId}/applications', { params: { path: { orgId } } }))).applications ??
        []) as Application[],
  });
  const members = useQuery({
    queryKey: ['orgs', orgId, 'members', ''],
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/orgs/{orgId}/members', { params: { path: { orgId }, query: {} } }))).members ??
        []) as MemberName[],
  });
  const nameOf = (id: string) => members.data?.find((m) => m.user_id === id)?.display_name ?? id;
  return (
    <Card
      title={t('apps.title')}
      extra={
        <Button onClick={() => setEditing('new')} data-testid="app-add">
          {t('apps.add')}
        </Button>
      }
    >
      <Typography.Paragraph type="secondary">{t('apps.hint')}</Typography.Paragraph>
      {apps.error && <Alert type="error" showIcon message={c.err(apps.error)} />}
      <Table<Application>
        rowKey="id"
        size="small"
        loading={apps.isLoading}
        dataSource={apps.data}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('apps.none') }}
        data-testid="apps-table"
        columns={[
          { title: t('apps.name'), dataIndex: 'name' },
          { title: t('apps.key'), dataIndex: 'app_key', render: (k: string) => <Typography.Text code>{k}</Typography.Text> },
          {
            title: t('apps.admins'),
            dataIndex: 'admins',
            render: (a: string[]) => (a.length ? a.map((id) => <Tag key={id}>{nameOf(id)}</Tag>) : '—'),
          },
          {
            title: '',
            key: 'edit',
            render: (_, a) => (
              <Space size={4} wrap>
                <Button size="small" onClick={() => setEditing(a)} data-testid={`app-admins-${a.app_key}`}>
                  {t('apps.setAdmins')}
                </Button>
                <Button size="small" onClick={() => setOrigins(a)} data-testid={`app-origins-${a.app_key}`}>
                  {t('apps.origins')}
                </Button>
              </Space>
            ),
          },
        ]}
      />
      {origins && <OriginsDialog orgId={orgId} app={origins} onClose={() => setOrigins(null)} />}
      {editing && (
        <AppDialog
          orgId={orgId}
          app={editing === 'new' ? null : editing}
          members={members.data ?? []}
          onClose={() => setEditing(null)}
          onDone={() => {
            setEditing(null);
            void qc.invalidateQueries({ queryKey: ['orgs', orgId, 'applications'] });
          }}
        />
      )}
    </Card>
  );
}

function AppDialog({
  orgId,
  app,
  members,
  onClose,
  onDone,
}: {
  orgId: string;
  app: Application | null;
  members: MemberName[];
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ app_key: string; name: string; admins: string[] }>();
  const save = useMutation({
    mutationFn: async (v: { app_key: string; name: string; admins: string[] }) => {
      if (app) {
        return unwrap(
          api.PUT('/api/v1/orgs/{orgId}/applications/{appId}/admins', {
            params: { path: { orgId, appId: app.id } },
            body: { admins: v.admins ?? [] },
          }),
        );
      }
      return unwrap(
        api.POST('/api/v1/orgs/{orgId}/applications', {
          params: { path: { orgId } },
          body: { app_key: v.app_key.trim(), name: v.name.trim(), admins: v.admins ?? [] },
        }),
      );
    },
    onSuccess: () => {
      message.success(t('apps.saved'));
      onDone();
    },
  });
  return (
    <Modal
      open
      title={app ? t('apps.adminsOf', { name: app.name }) : t('apps.add')}
      onCancel={onClose}
      okText={c.t('common.save')}
      okButtonProps={withTestId('app-save', { loading: save.isPending })}
      onOk={() => form.submit()}
      destroyOnHidden
    >
      <Form form={form} layout="vertical" initialValues={{ admins: app?.admins ?? [] }} onFinish={(v) => save.mutate(v)}>
        {!app && (
          <>
            <Form.Item name="name" label={t('apps.name')} rules={[{ required: true, whitespace: true, max: 128 }]}>
              <Input data-testid="app-name" />
            </Form.Item>
            <Form.Item
              name="app_key"
              label={t('apps.key')}
              extra={t('apps.keyHint')}
              rules={[{ required: true, whitespace: true, max: 64 }]}
            >
              <Input data-testid="app-key" />
            </Form.Item>
          </>
        )}
        <Form.Item name="admins" label={t('apps.admins')}>
          <Select
            mode="multiple"
            data-testid="app-admins"
            optionFilterProp="label"
            options={members.map((m) => ({ value: m.user_id, label: `${m.display_name} (@${m.username})` }))}
          />
        </Form.Item>
        {save.error && <Alert type="error" showIcon message={c.err(save.error)} />}
      </Form>
    </Modal>
  );
}

export const Component = SettingsPage;

/**
 * Where the application may send people back after the add-device flow or a device's page (third-party
 * entry, docs/third-party.md): exact origins, one per line.
 */
function OriginsDialog({ orgId, app, onClose }: { orgId: string; app: Application; onClose: () => void }) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const key = ['orgs', orgId, 'applications', app.id, 'origins'];
  const current = useQuery({
    queryKey: key,
    queryFn: async () =>
      (await unwrap(api.GET('/api/v1/orgs/{orgId}/applications/{appId}/origins', { params: { path: { orgId, appId: app.id } } })))
        .origins,
  });
  const [text, setText] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: (list: string[]) =>
      unwrap(
        api.PUT('/api/v1/orgs/{orgId}/applications/{appId}/origins', {
          params: { path: { orgId, appId: app.id } },
          body: { origins: list },
        }),
      ),
    onSuccess: (r) => {
      qc.setQueryData(key, r.origins);
      message.success(t('apps.originsSaved'));
      onClose();
    },
  });
  const value = text ?? (current.data ?? []).join('\n');
  return (
    <Modal
      open
      title={t('apps.originsOf', { name: app.name })}
      onCancel={onClose}
      onOk={() =>
        save.mutate(
          value
            .split(/\s+/)
            .map((x) => x.trim())
            .filter(Boolean),
        )
      }
      okButtonProps={withTestId('app-origins-save', { loading: save.isPending })}
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t('apps.originsHint', { key: app.app_key })}</Typography.Paragraph>
      {save.error && <Alert type="error" showIcon message={c.err(save.error)} style={{ marginBottom: 12 }} />}
      <Input.TextArea
        rows={4}
        value={value}
        onChange={(e) => setText(e.target.value)}
        placeholder="https://crm.example.com"
        data-testid="app-origins-input"
      />
    </Modal>
  );
}
