import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Form, Input, Modal, Radio, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';
import { useSession } from '../../session.js';

interface Org {
  id: string;
  name: string;
  parent_id: string | null;
  created_at: string;
}

interface NewOrg {
  name: string;
  who: 'new' | 'existing';
  username: string;
  display_name?: string;
  password?: string;
}

/** /operator/orgs — every organisation, with links to its admin pages; create one with its first super admin. */
export function Component() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const { refresh } = useSession();
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm<NewOrg>();
  const who = Form.useWatch('who', form) ?? 'new';
  const orgs = useQuery({ queryKey: ['/api/v1/orgs'], queryFn: () => unwrap(api.GET('/api/v1/orgs')) });
  const create = useMutation({
    mutationFn: (v: NewOrg) =>
      unwrap(
        api.POST('/api/v1/orgs', {
          body: {
            name: v.name.trim(),
            super_admin:
              v.who === 'new'
                ? { username: v.username.trim(), password: v.password, display_name: v.display_name?.trim() || undefined }
                : { username: v.username.trim() },
          },
        }),
      ),
    onSuccess: (r) => {
      const o = (r as unknown as { organisation: Org }).organisation;
      message.success(t('orgs.createdDone', { name: o.name }));
      void qc.invalidateQueries({ queryKey: ['/api/v1/orgs'] });
      // The operator may have made themself its super admin: the shell's sections follow.
      void refresh();
      setCreating(false);
      form.resetFields();
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = ((orgs.data as { organisations?: Org[] } | undefined)?.organisations ?? []) as Org[];
  const names = new Map(rows.map((o) => [o.id, o.name]));
  return (
    <Card
      title={t('orgs.title')}
      extra={
        <Button type="primary" onClick={() => setCreating(true)} data-testid="org-new">
          {t('orgs.new')}
        </Button>
      }
    >
      {orgs.error && <Alert type="error" showIcon message={c.err(orgs.error)} />}
      <Table<Org>
        rowKey="id"
        size="middle"
        loading={orgs.isLoading}
        dataSource={rows}
        pagination={rows.length > 50 ? { pageSize: 50 } : false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('orgs.empty') }}
        data-testid="orgs-table"
        columns={[
          {
            title: t('orgs.name'),
            key: 'name',
            render: (_, o) => (
              <Link to={`/orgs/${o.id}`} data-testid={`org-${o.name}`}>
                {o.name}
              </Link>
            ),
          },
          {
            title: t('orgs.parent'),
            key: 'parent',
            render: (_, o) => (o.parent_id ? <Tag>{names.get(o.parent_id) ?? o.parent_id}</Tag> : '—'),
          },
          { title: t('orgs.id'), key: 'id', render: (_, o) => <Typography.Text code>{o.id}</Typography.Text> },
          { title: t('orgs.created'), key: 'created', render: (_, o) => c.date(o.created_at) },
          {
            title: t('orgs.admin'),
            key: 'admin',
            render: (_, o) => (
              <Space size="small" wrap>
                <Link to={`/orgs/${o.id}/members`}>{t('orgs.members')}</Link>
                <Link to={`/orgs/${o.id}/devices`}>{t('orgs.devices')}</Link>
                <Link to={`/orgs/${o.id}/audit`}>{t('orgs.audit')}</Link>
              </Space>
            ),
          },
        ]}
      />
      <Modal
        open={creating}
        title={t('orgs.new')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('orgs.create')}
        confirmLoading={create.isPending}
        okButtonProps={withTestId('org-create')}
        destroyOnHidden
      >
        <Form<NewOrg>
          form={form}
          layout="vertical"
          initialValues={{ who: 'new' }}
          onFinish={(v) => create.mutate(v)}
          preserve={false}
        >
          <Form.Item name="name" label={t('orgs.name')} rules={[{ required: true, whitespace: true, max: 128 }]}>
            <Input autoFocus maxLength={128} data-testid="org-name" />
          </Form.Item>
          <Form.Item name="who" label={t('orgs.superAdmin')}>
            <Radio.Group
              optionType="button"
              options={[
                { value: 'new', label: <span data-testid="org-admin-new">{t('orgs.newPerson')}</span> },
                { value: 'existing', label: <span data-testid="org-admin-existing">{t('orgs.existingPerson')}</span> },
              ]}
            />
          </Form.Item>
          <Form.Item
            name="username"
            label={t('orgs.username')}
            extra={who === 'existing' ? t('orgs.existingHelp') : undefined}
            rules={[{ required: true, whitespace: true, max: 64 }]}
          >
            <Input autoComplete="off" maxLength={64} data-testid="org-admin-username" />
          </Form.Item>
          {who === 'new' && (
            <>
              <Form.Item name="display_name" label={t('orgs.displayName')} rules={[{ max: 128 }]}>
                <Input maxLength={128} data-testid="org-admin-display-name" />
              </Form.Item>
              <Form.Item
                name="password"
                label={t('orgs.password')}
                extra={t('orgs.passwordHelp')}
                rules={[{ required: true, min: 10, message: t('orgs.passwordHelp') }]}
              >
                <Input.Password autoComplete="new-password" data-testid="org-admin-password" />
              </Form.Item>
            </>
          )}
        </Form>
      </Modal>
    </Card>
  );
}
