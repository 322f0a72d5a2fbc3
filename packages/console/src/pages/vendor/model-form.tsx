import { Alert, Checkbox, Form, Input, Radio, Select, Switch, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { validateLabelTemplate } from '../../../../protocol/src/label-template.js';
import { type LabelFormat, labelContent } from '../../../../protocol/src/qr.js';
import type { paths } from '../../api/schema.js';
import { useI18n } from '../../i18n/index.js';
import { CATEGORY_OPTIONS, CLASS_OPTIONS, type CodeOption, codeLabel, SCENE_OPTIONS } from './model-codes.js';

export type Model =
  paths['/api/v1/vendors/{vendorId}/models']['get']['responses'][200]['content']['application/json']['models'][number];
export type ModelBody = NonNullable<
  paths['/api/v1/vendors/{vendorId}/models']['post']['requestBody']
>['content']['application/json'];

export interface ModelFormValues {
  name: string;
  product_key?: string;
  category_code: string;
  class_code: string;
  app_scene_code?: string | null;
  shared_seed?: boolean;
  binding_mode: 'owner_only' | 'shared' | 'rotating';
  require_check_char: boolean;
  label_format: LabelFormat;
  label_template?: string | null;
  org_campaigns_allowed: boolean;
}

export const NEW_MODEL: ModelFormValues = {
  name: '',
  category_code: '0',
  class_code: '0',
  app_scene_code: null,
  shared_seed: false,
  binding_mode: 'owner_only',
  require_check_char: false,
  label_format: 'wecom',
  label_template: 'ACME;{pk};{sn}',
  org_campaigns_allowed: false,
};

export function formValuesOf(m: Model): ModelFormValues {
  return {
    name: m.name,
    category_code: m.category_code ?? '0',
    class_code: m.class_code ?? '0',
    app_scene_code: m.app_scene_code ?? null,
    binding_mode: m.binding_mode,
    require_check_char: m.require_check_char ?? false,
    label_format: m.label_format,
    label_template: m.label_template ?? 'ACME;{pk};{sn}',
    org_campaigns_allowed: m.org_campaigns_allowed ?? false,
  };
}

/** The body the server takes: the template only with a custom format; creation-only fields on creation. */
export function bodyOf(v: ModelFormValues, creating: boolean): ModelBody {
  const body: ModelBody = {
    name: v.name.trim(),
    category_code: v.category_code as ModelBody['category_code'],
    class_code: v.class_code as ModelBody['class_code'],
    app_scene_code: (v.app_scene_code ?? null) as ModelBody['app_scene_code'],
    binding_mode: v.binding_mode,
    require_check_char: v.require_check_char,
    label_format: v.label_format,
    ...(v.label_format === 'custom' ? { label_template: v.label_template ?? '' } : {}),
    org_campaigns_allowed: v.org_campaigns_allowed ?? false,
  };
  if (creating) {
    if (v.product_key?.trim()) body.product_key = v.product_key.trim();
    body.shared_seed = v.shared_seed ?? false;
  }
  return body;
}

/** What this model's label would carry for a sample device, and why a template would be refused. */
export function LabelPreview({ format, template, pk }: { format: LabelFormat; template: string; pk: string }) {
  const { t } = useTranslation('vendor');
  const problems = format === 'custom' ? validateLabelTemplate(template) : [];
  const sample = labelContent(window.location.origin, format, template, {
    pk: pk || 'pk123',
    sn: 'BDG0000187',
    hwCode: 'hX3kQ9vLm2TzR8wYc4NbPa',
  });
  return (
    <div data-testid="label-preview">
      <Typography.Text type="secondary">{t('models.preview')}</Typography.Text>
      <Typography.Paragraph code style={{ wordBreak: 'break-all', marginBottom: 4 }} data-testid="label-preview-text">
        {problems.length ? '—' : sample}
      </Typography.Paragraph>
      {problems.length > 0 && (
        <Alert
          type="error"
          showIcon
          message={t('models.templateProblems')}
          description={problems.join('; ')}
          data-testid="template-problems"
        />
      )}
    </div>
  );
}

function codeSelect(opts: CodeOption[], lang: 'en' | 'zh', testId: string, allowClear = false) {
  return (
    <Select
      showSearch
      allowClear={allowClear}
      optionFilterProp="label"
      options={opts.map((o) => ({ value: o.value, label: codeLabel(o, lang) }))}
      data-testid={testId}
      popupMatchSelectWidth={false}
    />
  );
}

/** The model's fields: names, seed-002 codes, personal binding mode, label format with a live preview. */
export function ModelFields({ creating, productKey }: { creating: boolean; productKey?: string }) {
  const { t } = useTranslation('vendor');
  const { lang } = useI18n();
  const form = Form.useFormInstance<ModelFormValues>();
  const format = (Form.useWatch('label_format', form) ?? 'wecom') as LabelFormat;
  const template = Form.useWatch('label_template', form) ?? '';
  const typedPk = Form.useWatch('product_key', form) ?? '';
  return (
    <>
      <Form.Item name="name" label={t('models.name')} rules={[{ required: true, whitespace: true, max: 128 }]}>
        <Input maxLength={128} data-testid="model-name" />
      </Form.Item>
      {creating && (
        <Form.Item
          name="product_key"
          label={t('models.productKey')}
          extra={t('models.productKeyHint')}
          rules={[{ pattern: /^[0-9A-Za-z_-]{1,64}$/, message: t('models.productKeyRule') }]}
        >
          <Input maxLength={64} data-testid="model-pk" />
        </Form.Item>
      )}
      <Form.Item name="category_code" label={t('models.category')}>
        {codeSelect(CATEGORY_OPTIONS, lang, 'model-category')}
      </Form.Item>
      <Form.Item name="class_code" label={t('models.class')}>
        {codeSelect(CLASS_OPTIONS, lang, 'model-class')}
      </Form.Item>
      <Form.Item name="app_scene_code" label={t('models.appScene')} extra={t('models.appSceneHint')}>
        {codeSelect(SCENE_OPTIONS, lang, 'model-scene', true)}
      </Form.Item>
      {creating && (
        <Form.Item name="shared_seed" valuePropName="checked" extra={t('models.sharedSeedHint')}>
          <Checkbox data-testid="model-shared-seed">{t('models.sharedSeed')}</Checkbox>
        </Form.Item>
      )}
      <Form.Item name="binding_mode" label={t('models.bindingMode')}>
        <Radio.Group data-testid="model-binding-mode">
          {(['owner_only', 'shared', 'rotating'] as const).map((m) => (
            <Radio key={m} value={m}>
              {t(`models.mode.${m}`)}
            </Radio>
          ))}
        </Radio.Group>
      </Form.Item>
      <Form.Item
        name="require_check_char"
        label={t('models.checkChar')}
        valuePropName="checked"
        extra={t('models.checkCharHint')}
      >
        <Switch data-testid="model-check-char" />
      </Form.Item>
      <Form.Item
        name="org_campaigns_allowed"
        label={t('models.orgCampaigns')}
        valuePropName="checked"
        extra={t('models.orgCampaignsHint')}
      >
        <Switch data-testid="model-org-campaigns" />
      </Form.Item>
      <Form.Item name="label_format" label={t('models.labelFormat')}>
        <Radio.Group data-testid="model-label-format">
          {(['wecom', 'quectel', 'custom'] as const).map((f) => (
            <Radio key={f} value={f} data-testid={`label-format-${f}`}>
              {t(`models.format.${f}`)}
            </Radio>
          ))}
        </Radio.Group>
      </Form.Item>
      {format === 'custom' && (
        <Form.Item name="label_template" label={t('models.template')} extra={t('models.templateHint')}>
          <Input maxLength={512} data-testid="model-template" />
        </Form.Item>
      )}
      <Form.Item>
        <LabelPreview format={format} template={template ?? ''} pk={productKey ?? typedPk} />
      </Form.Item>
    </>
  );
}
