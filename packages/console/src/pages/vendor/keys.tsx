import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Grid, Input, Popconfirm, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { api, unwrap } from '../../api/client.js';
import { ShownOnce } from '../../components/shown-once.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';

interface VendorKey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/**
 * /vendors/:vendorId/keys — the vendor's API keys (vendor admins): names and dates, never values;
 * a new key is shown once with a copy button; revoking one (confirmed) stops it at once. Audited
 * on the server (vendor_key.create, vendor_key.revoke).
 */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [name, setName] = useState('');
  // On a phone the dates fold under the name, so name, status and revoke fit the screen.
  const phone = !Grid.useBreakpoint().md;
  const queryKey = ['vendors', vendorId, 'keys'];
  const keys = useQuery({
    queryKey,
    queryFn: async () =>
      ((await unwrap(api.GET('/api/v1/vendors/{vendorId}/keys', { params: { path: { vendorId } } }))).keys ?? []) as VendorKey[],
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
      void qc.invalidateQueries({ queryKey });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/tokens/{id}', { params: { path: { id } } })),
    onSuccess: (_, id) => {
      message.success(t('keys.revoked'));
      // The value shown once belongs to the key just revoked: take it off the page.
      if (create.data?.id === id) create.reset();
      void qc.invalidateQueries({ queryKey });
    },
    onError: (e) => message.error(c.err(e)),
  });
  const shown = create.data;
  const lastUsed = (k: VendorKey) => (k.last_used_at ? c.ago(k.last_used_at) : t('keys.never'));

  return (
    <Card title={t('keys.title')} data-testid="vkeys-card">
      <Typography.Paragraph type="secondary">{t('keys.hint')}</Typography.Paragraph>
      <Space.Compact style={{ width: '100%', maxWidth: 460, marginBottom: 12 }}>
        <Input
          placeholder={t('keys.namePlaceholder')}
          value={name}
          onChange={(e) => setName(e.target.value)}
          onPressEnter={() => create.mutate()}
          maxLength={128}
          aria-label={t('keys.name')}
          data-testid="vkey-name"
        />
        <Button type="primary" onClick={() => create.mutate()} loading={create.isPending} data-testid="vkey-create">
          {t('keys.create')}
        </Button>
      </Space.Compact>
      {shown && (
        <ShownOnce label={t('keys.shownOnce')} value={shown.token} warning={t('keys.shownOnceHint')} testId="vkey-token" />
      )}
      {keys.error && <Alert type="error" showIcon message={c.err(keys.error)} />}
      <Table<VendorKey>
        rowKey="id"
        size="middle"
        loading={keys.isLoading}
        dataSource={keys.data}
        pagination={{ pageSize: 20, hideOnSinglePage: true }}
        // On a phone the table fits the screen (the folded dates wrap) instead of scrolling sideways.
        scroll={phone ? undefined : { x: 'max-content' }}
        locale={{ emptyText: t('keys.none') }}
        data-testid="vkeys-table"
        columns={[
          {
            title: t('keys.name'),
            key: 'name',
            render: (_, k) => (
              <div data-testid={`vkey-${k.name}`}>
                <div>{k.name}</div>
                {phone && (
                  <Typography.Text type="secondary">
                    {c.date(k.created_at)} · {t('keys.lastUsed')}: {lastUsed(k)}
                  </Typography.Text>
                )}
              </div>
            ),
          },
          { title: t('keys.created'), key: 'created', responsive: ['md'], render: (_, k) => c.date(k.created_at) },
          { title: t('keys.lastUsed'), key: 'used', responsive: ['md'], render: (_, k) => lastUsed(k) },
          {
            title: t('keys.status'),
            key: 'status',
            render: (_, k) =>
              k.revoked_at ? (
                <Tag data-testid={`vkey-status-${k.name}`}>
                  {phone ? t('keys.revokedShort') : t('keys.revokedAt', { when: c.date(k.revoked_at) })}
                </Tag>
              ) : (
                <Tag color="green" data-testid={`vkey-status-${k.name}`}>
                  {t('keys.active')}
                </Tag>
              ),
          },
          {
            title: '',
            key: 'revoke',
            render: (_, k) =>
              !k.revoked_at && (
                <Popconfirm
                  title={t('keys.revokeConfirm', { name: k.name })}
                  okText={t('keys.revoke')}
                  onConfirm={() => revoke.mutate(k.id)}
                  okButtonProps={withTestId('vkey-revoke-ok', { danger: true })}
                >
                  <Button size="small" danger data-testid={`vkey-revoke-${k.name}`}>
                    {t('keys.revoke')}
                  </Button>
                </Popconfirm>
              ),
          },
        ]}
      />
    </Card>
  );
}
