import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { App, Drawer, Form, Input, Radio, Select, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import { CreateModal, ListCard, listTableProps } from '../../components/list-card.js';
import { type Merchant, MerchantDetail } from '../../components/merchant-detail.js';
import { useI18n } from '../../i18n/index.js';

interface NewMerchant {
  how: 'existing' | 'new';
  org_id?: string;
  name?: string;
  mchid: string;
  merchant_shortname: string;
  key_mode: Merchant['key_mode'];
}

/** /operator/merchants — every merchant; make an organisation one (or create one); a merchant's detail. */
export function Component() {
  const { t } = useTranslation('operator');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [form] = Form.useForm<NewMerchant>();
  const how = Form.useWatch('how', form) ?? 'existing';
  const merchants = useQuery({ queryKey: ['/api/v1/merchants'], queryFn: () => unwrap(api.GET('/api/v1/merchants')) });
  const orgs = useQuery({ queryKey: ['/api/v1/orgs'], queryFn: () => unwrap(api.GET('/api/v1/orgs')), enabled: creating });
  const create = useMutation({
    mutationFn: (v: NewMerchant) =>
      unwrap(
        api.POST('/api/v1/merchants', {
          body: {
            ...(v.how === 'existing' ? { org_id: v.org_id } : { name: v.name?.trim() }),
            mchid: v.mchid.trim(),
            merchant_shortname: v.merchant_shortname.trim(),
            key_mode: v.key_mode,
          },
        }),
      ),
    onSuccess: (r) => {
      const m = (r as unknown as { merchant: Merchant }).merchant;
      message.success(t('merchants.createdDone', { mchid: m.mchid }));
      void qc.invalidateQueries({ queryKey: ['/api/v1/merchants'] });
      void qc.invalidateQueries({ queryKey: ['/api/v1/orgs'] });
      setCreating(false);
      form.resetFields();
      setOpen(m.mchid);
    },
    onError: (e) => message.error(c.err(e)),
  });
  const rows = ((merchants.data as { merchants?: Merchant[] } | undefined)?.merchants ?? []) as Merchant[];
  const taken = new Set<string>([...rows.map((m) => m.org_id), ...rows.flatMap((m) => m.sub_merchants.map((s) => s.org_id))]);
  const candidates = (
    ((orgs.data as { organisations?: Array<{ id: string; name: string }> } | undefined)?.organisations ?? []) as Array<{
      id: string;
      name: string;
    }>
  ).filter((o) => !taken.has(o.id));
  return (
    <ListCard
      title={t('merchants.title')}
      newLabel={t('merchants.new')}
      newTestId="merchant-new"
      onNew={() => setCreating(true)}
      error={merchants.error ? c.err(merchants.error) : null}
    >
      <Table<Merchant>
        rowKey="mchid"
        {...listTableProps(rows, merchants.isLoading, t('merchants.empty'), 'merchants-table')}
        columns={[
          {
            title: t('merchants.mchid'),
            key: 'mchid',
            render: (_, m) => (
              <Typography.Link onClick={() => setOpen(m.mchid)} data-testid={`merchant-${m.mchid}`}>
                {m.mchid}
              </Typography.Link>
            ),
          },
          { title: t('merchants.shortname'), dataIndex: 'merchant_shortname', key: 'shortname' },
          { title: t('merchants.org'), dataIndex: 'name', key: 'org' },
          { title: t('merchants.keyMode'), key: 'mode', render: (_, m) => <Tag>{t(`merchants.mode.${m.key_mode}`)}</Tag> },
          { title: t('merchants.keys'), key: 'keys', align: 'right', render: (_, m) => m.keys.length },
          { title: t('merchants.subs'), key: 'subs', align: 'right', render: (_, m) => m.sub_merchants.length },
          { title: t('merchants.fleet'), dataIndex: 'fleet_total', key: 'fleet', align: 'right' },
        ]}
      />
      <CreateModal
        open={creating}
        title={t('merchants.new')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('merchants.create')}
        pending={create.isPending}
        okTestId="merchant-create"
      >
        <Form<NewMerchant>
          form={form}
          layout="vertical"
          initialValues={{ how: 'existing', key_mode: 'public_key' }}
          onFinish={(v) => create.mutate(v)}
          preserve={false}
        >
          <Form.Item name="how">
            <Radio.Group
              optionType="button"
              options={[
                { value: 'existing', label: t('merchants.existingOrg') },
                { value: 'new', label: t('merchants.newOrg') },
              ]}
            />
          </Form.Item>
          {how === 'existing' ? (
            <Form.Item name="org_id" label={t('merchants.org')} rules={[{ required: true }]}>
              <Select
                showSearch
                optionFilterProp="label"
                loading={orgs.isLoading}
                options={candidates.map((o) => ({ value: o.id, label: o.name }))}
                notFoundContent={t('merchants.noCandidates')}
                data-testid="merchant-org"
              />
            </Form.Item>
          ) : (
            <Form.Item name="name" label={t('merchants.orgName')} rules={[{ required: true, whitespace: true, max: 128 }]}>
              <Input maxLength={128} />
            </Form.Item>
          )}
          <Form.Item
            name="mchid"
            label={t('merchants.mchid')}
            rules={[{ required: true, pattern: /^[0-9]{1,32}$/, message: t('merchants.mchidHelp') }]}
          >
            <Input inputMode="numeric" maxLength={32} data-testid="merchant-mchid-input" />
          </Form.Item>
          <Form.Item
            name="merchant_shortname"
            label={t('merchants.shortname')}
            rules={[{ required: true, whitespace: true, max: 64 }]}
          >
            <Input maxLength={64} data-testid="merchant-shortname-input" />
          </Form.Item>
          <Form.Item name="key_mode" label={t('merchants.keyMode')}>
            <Select
              options={[
                { value: 'public_key', label: t('merchants.mode.public_key') },
                { value: 'platform_certificate', label: t('merchants.mode.platform_certificate') },
              ]}
            />
          </Form.Item>
        </Form>
      </CreateModal>
      <Drawer
        open={open !== null}
        onClose={() => setOpen(null)}
        title={open}
        width={Math.min(960, window.innerWidth)}
        destroyOnHidden
        data-testid="merchant-drawer"
      >
        {open && <MerchantDetail mchid={open} operator />}
      </Drawer>
    </ListCard>
  );
}
