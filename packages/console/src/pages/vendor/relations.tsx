import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Descriptions, Space, Table, Tag, Typography, Upload } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, csrfToken, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { reasonIn } from './relation-reasons.js';

/** A history entry (relations.service ImportHistoryEntry; the route declares no response schema). */
interface Entry {
  id: string;
  actor: string;
  /** The person's name, when a person imported it. */
  actor_name?: string | null;
  file_name: string | null;
  format: string;
  result: string;
  rows: number;
  paired: number;
  updated: number;
  unchanged: number;
  error_count: number;
  errors: LineError[];
  started_at: string;
}

interface LineError {
  line: number;
  column?: string;
  value?: string;
  message: string;
}

interface Report {
  dry_run: boolean;
  imported: boolean;
  import_id: string | null;
  rows: number;
  paired: number;
  updated: number;
  unchanged: number;
  error_count: number;
  errors: LineError[];
}

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/**
 * Uploads the file itself as the body (the import streams it; no form encoding). A file with line
 * errors is refused (422 IMPORT_REJECTED) with the whole report in the error's details.
 */
async function upload(vendorId: string, file: File, dryRun: boolean): Promise<Report> {
  const xlsx = /\.xlsx$/i.test(file.name);
  const q = new URLSearchParams({ dry_run: String(dryRun), filename: file.name, format: xlsx ? 'xlsx' : 'csv' });
  let r: Response;
  try {
    r = await fetch(`/api/v1/vendors/${encodeURIComponent(vendorId)}/relations/import?${q}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': xlsx ? XLSX : 'text/csv', 'x-csrf-token': csrfToken(), accept: 'application/json' },
      body: file,
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The server cannot be reached; check your connection');
  }
  const body = (await r.json().catch(() => ({}))) as Report & {
    error?: { code?: string; message?: string; details?: unknown };
  };
  if (r.ok) return body;
  const e = body.error;
  if (e?.code === 'IMPORT_REJECTED' && e.details) return e.details as Report;
  throw new ApiError(r.status, e?.code ?? `HTTP_${r.status}`, e?.message ?? `HTTP ${r.status}`, e?.details);
}

/** /vendors/:vendorId/relations — SN↔DeviceKey relation files (issue 13, item 5). */
export function Component() {
  const { vendorId = '' } = useParams();
  const { t } = useTranslation('vendor');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [report, setReport] = useState<Report | null>(null);
  const lang = c.lang;

  const history = useQuery({
    queryKey: ['vendors', vendorId, 'relations', 'imports'],
    queryFn: () =>
      unwrap(api.GET('/api/v1/vendors/{vendorId}/relations/imports', { params: { path: { vendorId }, query: { limit: 50 } } })),
  });
  const run = useMutation({
    mutationFn: (dryRun: boolean) => upload(vendorId, file!, dryRun),
    onSuccess: (r) => {
      setReport(r);
      if (r.imported) {
        message.success(t('relations.importedMsg', { rows: r.rows }));
        void qc.invalidateQueries({ queryKey: ['vendors', vendorId, 'relations', 'imports'] });
      }
    },
    onError: () => setReport(null),
  });
  const checkedOk = report?.dry_run === true && report.error_count === 0;
  const imports = (history.data as { imports?: Entry[] } | undefined)?.imports ?? [];

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Card title={t('relations.title')}>
        <Typography.Paragraph type="secondary">{t('relations.hint')}</Typography.Paragraph>
        <Space wrap>
          <Typography.Text>{t('relations.templates')}</Typography.Text>
          <Button href={`/api/v1/relations/template.csv?lang=${lang}`} download data-testid="tpl-csv">
            {t('relations.templateCsv')}
          </Button>
          <Button href={`/api/v1/relations/template.xlsx?lang=${lang}`} download data-testid="tpl-xlsx">
            {t('relations.templateXlsx')}
          </Button>
          <Button href={`/api/v1/vendors/${encodeURIComponent(vendorId)}/relations/export.csv?lang=${lang}`} download>
            {t('relations.export')}
          </Button>
        </Space>
      </Card>

      <Card title={t('relations.uploadTitle')}>
        <Space direction="vertical" style={{ width: '100%' }}>
          <Upload
            accept=".csv,.xlsx"
            maxCount={1}
            beforeUpload={(f) => {
              setFile(f);
              setReport(null);
              run.reset();
              return false;
            }}
            onRemove={() => {
              setFile(null);
              setReport(null);
            }}
            fileList={file ? [{ uid: 'f', name: file.name, status: 'done' }] : []}
          >
            <Button data-testid="relations-pick">{t('relations.pick')}</Button>
          </Upload>
          <Space wrap>
            <Button
              type={checkedOk ? 'default' : 'primary'}
              disabled={!file}
              loading={run.isPending && run.variables === true}
              onClick={() => run.mutate(true)}
              data-testid="relations-check"
            >
              {t('relations.check')}
            </Button>
            <Button
              type="primary"
              disabled={!file || !checkedOk}
              loading={run.isPending && run.variables === false}
              onClick={() => run.mutate(false)}
              data-testid="relations-import"
            >
              {t('relations.import')}
            </Button>
          </Space>
          <Typography.Text type="secondary">{t('relations.allOrNothing')}</Typography.Text>
          {run.error && <Alert type="error" showIcon message={c.err(run.error)} />}
          {report && <ReportView report={report} />}
        </Space>
      </Card>

      <Card title={t('relations.history')}>
        {history.error && <Alert type="error" showIcon message={c.err(history.error)} />}
        <Table<Entry>
          rowKey="id"
          size="small"
          loading={history.isLoading}
          dataSource={imports}
          pagination={false}
          scroll={{ x: 'max-content' }}
          locale={{ emptyText: t('relations.noImports') }}
          data-testid="relations-history"
          expandable={{
            rowExpandable: (e) => e.error_count > 0,
            expandedRowRender: (e) => <ErrorTable errors={e.errors} />,
          }}
          columns={[
            { title: t('relations.when'), dataIndex: 'started_at', render: (v: string) => c.date(v) },
            { title: t('relations.file'), dataIndex: 'file_name', render: (v: string | null) => v ?? '—' },
            { title: t('relations.who'), dataIndex: 'actor', render: (v: string, e: Entry) => e.actor_name ?? v },
            {
              title: t('relations.result'),
              dataIndex: 'result',
              render: (v: string) => <Tag color={v === 'imported' ? 'success' : 'error'}>{t(`relations.result.${v}`, v)}</Tag>,
            },
            { title: t('relations.rows'), dataIndex: 'rows' },
            { title: t('relations.paired'), dataIndex: 'paired' },
            { title: t('relations.updated'), dataIndex: 'updated' },
            { title: t('relations.errors'), dataIndex: 'error_count' },
          ]}
        />
      </Card>
    </Space>
  );
}

function ReportView({ report }: { report: Report }) {
  const { t } = useTranslation('vendor');
  const bad = report.error_count > 0;
  const title = bad
    ? t('relations.rejected', { n: report.error_count })
    : report.imported
      ? t('relations.imported')
      : t('relations.checked');
  return (
    <div data-testid="relations-report">
      <Alert
        type={bad ? 'error' : 'success'}
        showIcon
        message={title}
        description={bad ? t('relations.nothingWritten') : report.dry_run ? t('relations.dryRunNote') : undefined}
        data-testid={bad ? 'relations-rejected' : report.imported ? 'relations-imported' : 'relations-checked'}
      />
      <Descriptions size="small" column={{ xs: 2, md: 5 }} style={{ marginTop: 12 }}>
        <Descriptions.Item label={t('relations.rows')}>{report.rows}</Descriptions.Item>
        {/* A rejected file changes nothing: what it would have paired is beside the point. */}
        {!bad && <Descriptions.Item label={t('relations.paired')}>{report.paired}</Descriptions.Item>}
        {!bad && <Descriptions.Item label={t('relations.updated')}>{report.updated}</Descriptions.Item>}
        {!bad && <Descriptions.Item label={t('relations.unchanged')}>{report.unchanged}</Descriptions.Item>}
        <Descriptions.Item label={t('relations.errors')}>{report.error_count}</Descriptions.Item>
      </Descriptions>
      {bad && (
        <>
          {report.error_count > report.errors.length && (
            <Typography.Paragraph type="secondary">
              {t('relations.firstErrors', { shown: report.errors.length, n: report.error_count })}
            </Typography.Paragraph>
          )}
          <ErrorTable errors={report.errors} />
        </>
      )}
    </div>
  );
}

function ErrorTable({ errors }: { errors: LineError[] }) {
  const { t, i18n } = useTranslation('vendor');
  return (
    <Table<LineError>
      rowKey={(e) => `${e.line}:${e.column ?? ''}:${e.message}`}
      size="small"
      dataSource={errors}
      pagination={{ pageSize: 50, hideOnSinglePage: true }}
      scroll={{ x: 'max-content' }}
      data-testid="relations-errors"
      columns={[
        { title: t('relations.line'), dataIndex: 'line', width: 80 },
        { title: t('relations.column'), dataIndex: 'column', render: (v?: string) => v ?? '—' },
        {
          title: t('relations.value'),
          dataIndex: 'value',
          render: (v?: string) => (v === undefined || v === '' ? '—' : <Typography.Text code>{v}</Typography.Text>),
        },
        {
          title: t('relations.reason'),
          dataIndex: 'message',
          render: (m: string) => reasonIn(i18n.language, m, (k, v) => t(k, v)),
        },
      ]}
    />
  );
}
