import { useMutation, useQuery } from '@tanstack/react-query';
import {
  Alert,
  Button,
  Checkbox,
  Form,
  Input,
  InputNumber,
  Modal,
  Radio,
  Select,
  Space,
  TimePicker,
  Typography,
  Upload,
} from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { paths } from '../../api/schema.js';
import { errorText } from '../../i18n/index.js';
import { DepartmentSelect, type Dept } from '../department-tree.js';
import { withTestId } from '../test-id.js';
import type { Campaign } from './campaign-list.js';
import { readSnFile, SN_FILE_MAX_BYTES, SN_LIST_MAX, type SnFileResult, splitSns } from './sn-file.js';

/** What POST …/campaigns takes (the vendor's and the organisation's routes take the same body). */
export type CreateCampaignBody = NonNullable<
  paths['/api/v1/vendors/{vendorId}/campaigns']['post']['requestBody']
>['content']['application/json'];

export interface Option {
  value: string;
  label: string;
}

interface FormValues {
  name: string;
  model_id: string;
  firmware_id: string;
  from_versions?: string[];
  /** Vendor pages: the owner organisation (its department below). */
  org_id?: string;
  department_id?: string;
  online_only?: boolean;
  sns?: string;
  /** The canary as a number of devices or a percentage of the target. */
  canary_mode: 'count' | 'percent';
  canary_count: number;
  canary_percent: number;
  rate_per_minute: number;
  factor: number;
  stage_size: number;
  min_executions: number;
  failure_pct?: number | null;
  timeout_pct?: number | null;
  did_not_come_back_pct?: number | null;
  offline: 'skip' | 'queue';
  window_min: number;
  error_report_threshold: number;
  /** TimePicker values (dayjs, antd's own date type). */
  mw_range?: [{ format(f: string): string }, { format(f: string): string }] | null;
  mw_days?: number[];
}

const DAYS = [1, 2, 3, 4, 5, 6, 0];

/** An SN file that was read: its name and SNs. */
interface SnFile {
  name: string;
  sns: string[];
}

/**
 * Starting a campaign (vendor and organisation pages): target, image, stages, abort thresholds and
 * an optional maintenance window. Where the models and images come from, and where the body goes,
 * are the page's: a vendor picks among its models and narrows by version, owner organisation and
 * that organisation's department; an organisation among the models its vendors let it upgrade, and
 * by department.
 */
export function CampaignForm({
  models,
  firmwareOf,
  versionsOf,
  departments,
  owners,
  timeZoneNote,
  submit,
  onCreated,
  onClose,
}: {
  models: Option[];
  firmwareOf: (modelId: string) => Promise<Option[]>;
  /** Versions the fleet runs, for "only devices on these versions" (vendor pages). */
  versionsOf?: (modelId: string) => Promise<Option[]>;
  /** The organisation's departments, for a department target (organisation pages). */
  departments?: Dept[];
  /** Owner organisations owning the model's devices, and one's departments (vendor pages). */
  owners?: {
    orgsOf: (modelId: string) => Promise<Option[]>;
    departmentsOf: (orgId: string) => Promise<Dept[]>;
  };
  /** Whose time zone a maintenance window is read in. */
  timeZoneNote: string;
  submit: (body: CreateCampaignBody) => Promise<Campaign>;
  onCreated: (c: Campaign) => void;
  onClose(): void;
}) {
  const { t } = useTranslation('campaigns');
  const [form] = Form.useForm<FormValues>();
  const modelId = Form.useWatch('model_id', form);
  const canaryMode = Form.useWatch('canary_mode', form) ?? 'count';
  const [snFile, setSnFile] = useState<SnFile | null>(null);
  const [snFileError, setSnFileError] = useState<Extract<SnFileResult, { ok: false }>['error'] | null>(null);
  const readFile = async (file: File) => {
    const r = await readSnFile(file);
    if (r.ok) {
      setSnFile({ name: file.name, sns: r.sns });
      setSnFileError(null);
    } else {
      setSnFile(null);
      setSnFileError(r.error);
    }
  };
  const firmware = useQuery({
    queryKey: ['campaign-form', 'firmware', modelId],
    enabled: !!modelId,
    queryFn: () => firmwareOf(modelId!),
  });
  const versions = useQuery({
    queryKey: ['campaign-form', 'versions', modelId],
    enabled: !!modelId && !!versionsOf,
    queryFn: () => versionsOf!(modelId!),
  });
  const ownerId = Form.useWatch('org_id', form);
  const ownerOrgs = useQuery({
    queryKey: ['campaign-form', 'owners', modelId],
    enabled: !!modelId && !!owners,
    queryFn: () => owners!.orgsOf(modelId!),
  });
  const ownerDepts = useQuery({
    queryKey: ['campaign-form', 'owner-departments', ownerId],
    enabled: !!ownerId && !!owners,
    queryFn: () => owners!.departmentsOf(ownerId!),
  });
  const create = useMutation({
    mutationFn: (v: FormValues) => {
      // Pasted and uploaded SNs together, each once.
      const sns = [...new Set([...splitSns(v.sns ?? ''), ...(snFile?.sns ?? [])])];
      const range = v.mw_range;
      const body: CreateCampaignBody = {
        name: v.name,
        model_id: v.model_id,
        firmware_id: v.firmware_id,
        target: {
          ...(v.from_versions?.length ? { from_versions: v.from_versions } : {}),
          ...(v.org_id ? { org_id: v.org_id } : {}),
          ...(v.department_id ? { department_id: v.department_id } : {}),
          ...(v.online_only ? { online_only: true } : {}),
          ...(sns.length ? { sns } : {}),
        },
        stages: {
          ...(v.canary_mode === 'percent' ? { canary_percent: v.canary_percent } : { canary_count: v.canary_count }),
          rate_per_minute: v.rate_per_minute,
          factor: v.factor,
          stage_size: v.stage_size,
        },
        thresholds: {
          min_executions: v.min_executions,
          failure_pct: v.failure_pct ?? null,
          timeout_pct: v.timeout_pct ?? null,
          did_not_come_back_pct: v.did_not_come_back_pct ?? null,
        },
        offline: v.offline,
        window_sec: Math.round(v.window_min * 60),
        error_report_threshold: v.error_report_threshold,
        ...(range
          ? {
              maintenance_window: {
                start: range[0].format('HH:mm'),
                end: range[1].format('HH:mm'),
                ...(v.mw_days?.length && v.mw_days.length < 7 ? { days: v.mw_days } : {}),
              },
            }
          : {}),
      };
      return submit(body);
    },
    onSuccess: onCreated,
  });
  return (
    <Modal
      open
      title={t('campaigns.new')}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t('campaigns.start')}
      confirmLoading={create.isPending}
      okButtonProps={withTestId('campaign-start')}
      width={640}
      destroyOnHidden
    >
      {create.error && <Alert type="error" showIcon message={errorText(create.error)} style={{ marginBottom: 12 }} />}
      <Form<FormValues>
        form={form}
        layout="vertical"
        onFinish={(v) => create.mutate(v)}
        initialValues={{
          canary_mode: 'count',
          canary_count: 10,
          canary_percent: 5,
          rate_per_minute: 100,
          factor: 2,
          stage_size: 500,
          min_executions: 50,
          failure_pct: 10,
          timeout_pct: 20,
          did_not_come_back_pct: 5,
          offline: 'queue',
          window_min: 30,
          error_report_threshold: 3,
          mw_days: DAYS,
        }}
      >
        <Form.Item name="name" label={t('campaigns.f.name')} rules={[{ required: true, max: 120 }]}>
          <Input {...withTestId('campaign-name')} />
        </Form.Item>
        <Space wrap align="start">
          <Form.Item name="model_id" label={t('campaigns.f.model')} rules={[{ required: true }]}>
            <Select
              style={{ minWidth: 220 }}
              data-testid="campaign-model"
              options={models}
              onChange={() =>
                form.setFieldsValue({ firmware_id: undefined, from_versions: [], org_id: undefined, department_id: undefined })
              }
            />
          </Form.Item>
          <Form.Item name="firmware_id" label={t('campaigns.f.image')} rules={[{ required: true }]}>
            <Select style={{ minWidth: 180 }} data-testid="campaign-image" options={firmware.data ?? []} />
          </Form.Item>
        </Space>
        {versionsOf && (
          <Form.Item name="from_versions" label={t('campaigns.f.fromVersions')} extra={t('campaigns.f.fromVersionsHelp')}>
            <Select mode="multiple" data-testid="campaign-from" options={versions.data ?? []} />
          </Form.Item>
        )}
        {owners && (
          <Form.Item name="org_id" label={t('campaigns.f.owner')} extra={t('campaigns.f.ownerHelp')}>
            <Select
              allowClear
              showSearch
              optionFilterProp="label"
              disabled={!modelId}
              loading={ownerOrgs.isFetching}
              placeholder={t('campaigns.f.ownerAny')}
              options={ownerOrgs.data ?? []}
              onChange={() => form.setFieldsValue({ department_id: undefined })}
              data-testid="campaign-org"
            />
          </Form.Item>
        )}
        {owners && ownerId && (
          <Form.Item name="department_id" label={t('campaigns.f.department')} extra={t('campaigns.f.departmentHelp')}>
            <DepartmentSelect depts={ownerDepts.data ?? []} testId="campaign-department" />
          </Form.Item>
        )}
        {departments && (
          <Form.Item name="department_id" label={t('campaigns.f.department')} extra={t('campaigns.f.departmentHelp')}>
            <DepartmentSelect depts={departments} testId="campaign-department" />
          </Form.Item>
        )}
        <Form.Item name="online_only" valuePropName="checked">
          <Checkbox>{t('campaigns.f.onlineOnly')}</Checkbox>
        </Form.Item>
        <Form.Item name="sns" label={t('campaigns.f.sns')} extra={t('campaigns.f.snsHelp')}>
          <Input.TextArea rows={2} data-testid="campaign-sns" />
        </Form.Item>
        <Form.Item
          extra={t('campaigns.f.snFileHelp', { mb: SN_FILE_MAX_BYTES / 1024 / 1024, max: SN_LIST_MAX.toLocaleString() })}
        >
          <Space wrap align="center">
            <Upload
              accept=".csv,.txt,text/csv,text/plain"
              maxCount={1}
              showUploadList={false}
              beforeUpload={(file) => {
                void readFile(file);
                return false;
              }}
            >
              <Button data-testid="campaign-sn-file">{t('campaigns.f.snFile')}</Button>
            </Upload>
            {snFile && (
              <>
                <Typography.Text data-testid="campaign-sn-file-count">
                  {t('campaigns.f.snFileRead', { n: snFile.sns.length, name: snFile.name })}
                </Typography.Text>
                <Button size="small" type="link" onClick={() => setSnFile(null)} data-testid="campaign-sn-file-clear">
                  {t('campaigns.f.snFileClear')}
                </Button>
              </>
            )}
          </Space>
          {snFileError && (
            <Alert
              type="error"
              showIcon
              style={{ marginTop: 8 }}
              data-testid="campaign-sn-file-error"
              message={t(`campaigns.f.snFileError.${snFileError}`, {
                mb: SN_FILE_MAX_BYTES / 1024 / 1024,
                max: SN_LIST_MAX.toLocaleString(),
              })}
            />
          )}
        </Form.Item>
        <Typography.Text strong>{t('campaigns.f.stages')}</Typography.Text>
        <Space wrap align="start">
          <Form.Item name="canary_mode" label={t('campaigns.f.canaryAs')}>
            <Radio.Group
              optionType="button"
              data-testid="campaign-canary-mode"
              options={[
                { value: 'count', label: t('campaigns.f.canaryCount') },
                { value: 'percent', label: t('campaigns.f.canaryPercent') },
              ]}
            />
          </Form.Item>
          {canaryMode === 'percent' ? (
            <Form.Item name="canary_percent" label={t('campaigns.f.canaryPercentOf')} rules={[{ required: true }]}>
              <InputNumber min={0.1} max={100} step={1} suffix="%" />
            </Form.Item>
          ) : (
            <Form.Item name="canary_count" label={t('campaigns.f.canary')} rules={[{ required: true }]}>
              <InputNumber min={0} precision={0} />
            </Form.Item>
          )}
          <Form.Item name="rate_per_minute" label={t('campaigns.f.rate')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
          <Form.Item name="factor" label={t('campaigns.f.factor')} rules={[{ required: true }]}>
            <InputNumber min={1} max={10} step={0.5} />
          </Form.Item>
          <Form.Item name="stage_size" label={t('campaigns.f.stageSize')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
        </Space>
        <Typography.Text strong>{t('campaigns.f.thresholds')}</Typography.Text>
        <Space wrap align="start">
          <Form.Item name="min_executions" label={t('campaigns.f.minExecutions')} rules={[{ required: true }]}>
            <InputNumber min={1} />
          </Form.Item>
          <Form.Item name="failure_pct" label={t('campaigns.f.failurePct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
          <Form.Item name="timeout_pct" label={t('campaigns.f.timeoutPct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
          <Form.Item name="did_not_come_back_pct" label={t('campaigns.f.dncPct')}>
            <InputNumber min={0.1} max={100} suffix="%" />
          </Form.Item>
        </Space>
        <Form.Item
          name="error_report_threshold"
          label={t('campaigns.f.errorReports')}
          extra={t('campaigns.f.errorReportsHelp')}
          rules={[{ required: true }]}
        >
          <InputNumber min={1} max={1000} precision={0} />
        </Form.Item>
        <Space wrap align="start">
          <Form.Item name="offline" label={t('campaigns.f.offline')}>
            <Select
              style={{ minWidth: 200 }}
              options={[
                { value: 'queue', label: t('campaigns.f.offlineQueue') },
                { value: 'skip', label: t('campaigns.f.offlineSkip') },
              ]}
            />
          </Form.Item>
          <Form.Item name="window_min" label={t('campaigns.f.window')} rules={[{ required: true }]}>
            <InputNumber min={1} max={10080} />
          </Form.Item>
        </Space>
        <div>
          <Typography.Text strong>{t('campaigns.f.maintenance')}</Typography.Text>
        </div>
        <Typography.Paragraph type="secondary" style={{ marginBottom: 8 }}>
          {t('campaigns.f.maintenanceHelp')} {timeZoneNote}
        </Typography.Paragraph>
        <Space wrap align="start">
          <Form.Item name="mw_range" label={t('campaigns.f.maintenanceTime')}>
            <TimePicker.RangePicker format="HH:mm" order={false} data-testid="campaign-window" />
          </Form.Item>
          <Form.Item
            name="mw_days"
            label={t('campaigns.f.maintenanceDays')}
            dependencies={['mw_range']}
            rules={[
              ({ getFieldValue }) => ({
                validator: (_r, days?: number[]) =>
                  getFieldValue('mw_range') && !days?.length
                    ? Promise.reject(new Error(t('campaigns.f.maintenanceNoDay')))
                    : Promise.resolve(),
              }),
            ]}
          >
            <Checkbox.Group
              data-testid="campaign-window-days"
              options={DAYS.map((d) => ({ value: d, label: t(`campaigns.day.${d}`) }))}
            />
          </Form.Item>
        </Space>
      </Form>
    </Modal>
  );
}
