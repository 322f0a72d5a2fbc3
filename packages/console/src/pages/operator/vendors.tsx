import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Descriptions, Drawer, Form, Input, Popconfirm, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { CreateModal, ListCard, listTableProps } from '../../components/list-card.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';

interface Vendor {
  id: string;
  name: string;
  created_at: string;
}

interface VendorKey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** /operator/vendors — every vendor; create one; a vendor's keys (a new key is shown once). */
export function Component() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<Vendor | null>(null);
  const [form] = Form.useForm<{ name: string }>();
  const vendors = useQuery({
    queryKey: ['/api/v1/vendors'],
    queryFn: () => unwrap(api.GET('/api/v1/vendors')),
  });
  const create = useMutation({
    mutationFn: (name: string) => unwrap(api.POST('/api/v1/vendors', { body: { name } })),
    onSuccess: (r) => {
      const v = (r as unknown as { vendor: Vendor }).vendor;
      message.success(t('vendors.createdDone', { name: v.name }));
      void qc.invalidateQueries({ queryKey: ['/api/v1/vendors'] });
      setCreating(false);
      form.resetFields();
      setOpen(v);
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = ((vendors.data as { vendors?: Vendor[] } | undefined)?.vendors ?? []) as Vendor[];
  return (
    <ListCard
      title={t('vendors.title')}
      newLabel={t('vendors.new')}
      newTestId="vendor-new"
      onNew={() => setCreating(true)}
      error={vendors.error ? c.err(vendors.error) : null}
    >
      <Table<Vendor>
        rowKey="id"
        {...listTableProps(rows, vendors.isLoading, t('vendors.empty'), 'vendors-table')}
        columns={[
          {
            title: t('vendors.name'),
            key: 'name',
            render: (_, v) => (
              <Typography.Link onClick={() => setOpen(v)} data-testid={`vendor-${v.name}`}>
                {v.name}
              </Typography.Link>
            ),
          },
          { title: t('vendors.id'), key: 'id', render: (_, v) => <Typography.Text code>{v.id}</Typography.Text> },
          { title: t('vendors.created'), key: 'created', render: (_, v) => c.date(v.created_at) },
          {
            title: t('vendors.pages'),
            key: 'pages',
            render: (_, v) => <Link to={`/vendors/${v.id}`}>{t('vendors.open')}</Link>,
          },
        ]}
      />
      <CreateModal
        open={creating}
        title={t('vendors.new')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('vendors.create')}
        pending={create.isPending}
        okTestId="vendor-create"
      >
        <Form form={form} layout="vertical" onFinish={(v) => create.mutate(v.name.trim())} preserve={false}>
          <Form.Item name="name" label={t('vendors.name')} rules={[{ required: true, whitespace: true, max: 128 }]}>
            <Input autoFocus maxLength={128} data-testid="vendor-name" />
          </Form.Item>
        </Form>
      </CreateModal>
      <VendorDrawer vendor={open} onClose={() => setOpen(null)} />
    </ListCard>
  );
}

function VendorDrawer({ vendor, onClose }: { vendor: Vendor | null; onClose: () => void }) {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const vendorId = vendor?.id ?? '';
  const keysKey = ['/api/v1/vendors', vendorId, 'keys'];
  const keys = useQuery({
    queryKey: keysKey,
    queryFn: () => unwrap(api.GET('/api/v1/vendors/{vendorId}/keys', { params: { path: { vendorId } } })),
    enabled: vendor !== null,
  });
  const detail = useQuery({
    queryKey: ['/api/v1/vendors', vendorId],
    queryFn: () => unwrap(api.GET('/api/v1/vendors/{vendorId}', { params: { path: { vendorId } } })),
    enabled: vendor !== null,
  });
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/api/v1/vendors/{vendorId}/keys', {
          params: { path: { vendorId } },
          body: { name: name.trim() || 'vendor key' },
        }),
      ) as unknown as Promise<{ id: string; token: string }>,
    onSuccess: () => {
      setName('');
      void qc.invalidateQueries({ queryKey: keysKey });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } })),
    onSuccess: () => {
      message.success(t('vendors.keyRevoked'));
      void qc.invalidateQueries({ queryKey: keysKey });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const list = ((keys.data as { keys?: VendorKey[] } | undefined)?.keys ?? []) as VendorKey[];
  const shown = create.data;
  const v = (detail.data as { vendor?: Vendor } | undefined)?.vendor ?? vendor;
  return (
    <Drawer
      open={vendor !== null}
      onClose={() => {
        create.reset();
        onClose();
      }}
      title={v?.name}
      width={Math.min(720, window.innerWidth)}
      destroyOnHidden
      data-testid="vendor-drawer"
    >
      {v && (
        <Descriptions size="small" column={1} style={{ marginBottom: 16 }}>
          <Descriptions.Item label={t('vendors.id')}>
            <Typography.Text code copyable>
              {v.id}
            </Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t('vendors.created')}>{c.date(v.created_at)}</Descriptions.Item>
        </Descriptions>
      )}
      <Typography.Title level={5}>{t('vendors.keys')}</Typography.Title>
      <Typography.Paragraph type="secondary">{t('vendors.keysHelp')}</Typography.Paragraph>
      <Space.Compact style={{ width: '100%', maxWidth: 420, marginBottom: 12 }}>
        <Input
          placeholder={t('vendors.keyName')}
          value={name}
          onChange={(e) => setName(e.target.value)}
          maxLength={128}
          data-testid="vendor-key-name"
        />
        <Button type="primary" onClick={() => create.mutate()} loading={create.isPending} data-testid="vendor-key-create">
          {t('vendors.keyCreate')}
        </Button>
      </Space.Compact>
      {shown && (
        <Alert
          type="success"
          showIcon
          style={{ marginBottom: 12 }}
          message={t('vendors.keyShownOnce')}
          description={
            <Typography.Paragraph
              copyable={{ text: shown.token }}
              code
              style={{ wordBreak: 'break-all', margin: 0 }}
              data-testid="vendor-key-token"
            >
              {shown.token}
            </Typography.Paragraph>
          }
        />
      )}
      {keys.error && <Alert type="error" showIcon message={c.err(keys.error)} />}
      <Table<VendorKey>
        rowKey="id"
        size="small"
        loading={keys.isLoading}
        dataSource={list}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: t('vendors.noKeys') }}
        data-testid="vendor-keys"
        columns={[
          { title: t('vendors.keyName'), dataIndex: 'name', key: 'name' },
          { title: t('vendors.created'), key: 'created', render: (_, k) => c.date(k.created_at) },
          { title: t('vendors.lastUsed'), key: 'used', render: (_, k) => c.ago(k.last_used_at) },
          {
            title: t('vendors.status'),
            key: 'status',
            render: (_, k) => (k.revoked_at ? <Tag>{t('vendors.revoked')}</Tag> : <Tag color="green">{t('vendors.active')}</Tag>),
          },
          {
            title: '',
            key: 'revoke',
            render: (_, k) =>
              !k.revoked_at && (
                <Popconfirm
                  title={t('vendors.revokeConfirm', { name: k.name })}
                  onConfirm={() => revoke.mutate(k.id)}
                  okButtonProps={withTestId('vendor-key-revoke-confirm', { danger: true })}
                >
                  <Button size="small" danger data-testid={`vendor-key-revoke-${k.name}`}>
                    {t('vendors.revoke')}
                  </Button>
                </Popconfirm>
              ),
          },
        ]}
      />
    </Drawer>
  );
}
