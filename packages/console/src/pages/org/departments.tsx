import { useMutation, useQueryClient } from '@tanstack/react-query';
import { Alert, App, Button, Card, Col, Descriptions, Form, Input, Modal, Popconfirm, Row, Space, Tree, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import { DepartmentSelect, type Dept, deptName, deptTree, subtree, useDepartments } from '../../components/department-tree.js';
import { withTestId } from '../../components/test-id.js';
import { useI18n } from '../../i18n/index.js';

type Dialog = { kind: 'add' | 'rename' | 'move'; dept: Dept } | null;

/** What still holds a department the server refused to delete (DEPARTMENT_NOT_EMPTY details). */
interface Held {
  sub_departments?: number;
  members?: number;
  invitations?: number;
  devices?: number;
}

/** /orgs/:orgId/departments — the tree: add a child, rename, move under another parent, delete. */
export function DepartmentsPage() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const qc = useQueryClient();
  const depts = useDepartments(orgId);
  const [selected, setSelected] = useState<string | null>(null);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const d = depts.data ?? [];
  const current = d.find((x) => x.id === selected) ?? d.find((x) => x.parent_id === null);
  const refresh = () => qc.invalidateQueries({ queryKey: ['orgs', orgId, 'departments'] });

  const remove = useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE('/api/v1/orgs/{orgId}/departments/{deptId}', { params: { path: { orgId, deptId: id } } })),
    onSuccess: () => {
      message.success(t('departments.deleted'));
      setSelected(null);
      setRefusal(null);
      void refresh();
    },
    onError: (e) => {
      if (e instanceof ApiError && e.code === 'DEPARTMENT_NOT_EMPTY') {
        const h = (e.details ?? {}) as Held;
        const parts = (['members', 'invitations', 'devices'] as const)
          .filter((k) => (h[k] ?? 0) > 0)
          .map((k) => t(`departments.held.${k}`, { n: h[k] ?? 0 }));
        setRefusal(
          t(h.sub_departments ? 'departments.refusedTree' : 'departments.refused', {
            what: parts.join(c.lang === 'zh' ? '、' : ', '),
          }),
        );
      } else setRefusal(c.err(e));
    },
  });

  const isRoot = current?.parent_id === null;
  return (
    <Card title={t('departments.title')}>
      {depts.error && <Alert type="error" showIcon message={c.err(depts.error)} />}
      <Row gutter={[16, 16]}>
        <Col xs={24} md={12}>
          {d.length > 0 && (
            <Tree
              data-testid="dept-tree"
              treeData={deptTree(d)}
              defaultExpandAll
              showLine
              blockNode
              selectedKeys={current ? [current.id] : []}
              onSelect={(keys) => {
                setRefusal(null);
                if (keys[0]) setSelected(String(keys[0]));
              }}
              titleRender={(n) => <span data-testid={`dept-node-${String(n.title)}`}>{n.title as string}</span>}
            />
          )}
        </Col>
        <Col xs={24} md={12}>
          {current && (
            <Space direction="vertical" style={{ width: '100%' }} data-testid="dept-panel">
              <Descriptions
                size="small"
                column={1}
                bordered
                items={[
                  { key: 'name', label: t('departments.name'), children: <b data-testid="dept-selected">{current.name}</b> },
                  {
                    key: 'parent',
                    label: t('departments.parent'),
                    children: isRoot ? t('departments.isRoot') : deptName(d, current.parent_id),
                  },
                  { key: 'children', label: t('departments.children'), children: subtree(d, current.id).size - 1 },
                ]}
              />
              <Space wrap>
                <Button type="primary" onClick={() => setDialog({ kind: 'add', dept: current })} data-testid="dept-add">
                  {t('departments.addChild')}
                </Button>
                <Button onClick={() => setDialog({ kind: 'rename', dept: current })} data-testid="dept-rename">
                  {t('departments.rename')}
                </Button>
                {!isRoot && (
                  <Button onClick={() => setDialog({ kind: 'move', dept: current })} data-testid="dept-move">
                    {t('departments.move')}
                  </Button>
                )}
                {!isRoot && (
                  <Popconfirm
                    title={t('departments.deleteConfirm', { name: current.name })}
                    okText={t('departments.delete')}
                    okButtonProps={withTestId('dept-delete-ok', { danger: true })}
                    onConfirm={() => remove.mutate(current.id)}
                  >
                    <Button danger data-testid="dept-delete">
                      {t('departments.delete')}
                    </Button>
                  </Popconfirm>
                )}
              </Space>
              {isRoot && <Typography.Text type="secondary">{t('departments.rootHint')}</Typography.Text>}
              {refusal && (
                <Alert
                  type="warning"
                  showIcon
                  message={t('departments.cannotDelete')}
                  description={refusal}
                  data-testid="dept-refusal"
                />
              )}
            </Space>
          )}
        </Col>
      </Row>
      {dialog && (
        <DeptDialog
          orgId={orgId}
          depts={d}
          dialog={dialog}
          onClose={() => setDialog(null)}
          onDone={(id) => {
            setDialog(null);
            setRefusal(null);
            if (id) setSelected(id);
            void refresh();
          }}
        />
      )}
    </Card>
  );
}

function DeptDialog({
  orgId,
  depts,
  dialog,
  onClose,
  onDone,
}: {
  orgId: string;
  depts: Dept[];
  dialog: NonNullable<Dialog>;
  onClose: () => void;
  onDone: (id?: string) => void;
}) {
  const { t } = useTranslation('org');
  const c = useI18n();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ name?: string; parent_id?: string }>();
  const { kind, dept } = dialog;
  const save = useMutation({
    mutationFn: async (v: { name?: string; parent_id?: string }) => {
      if (kind === 'add') {
        const r = await unwrap(
          api.POST('/api/v1/orgs/{orgId}/departments', {
            params: { path: { orgId } },
            body: { name: (v.name ?? '').trim(), parent_id: dept.id },
          }),
        );
        return r.department?.id;
      }
      await unwrap(
        api.PATCH('/api/v1/orgs/{orgId}/departments/{deptId}', {
          params: { path: { orgId, deptId: dept.id } },
          body: kind === 'rename' ? { name: (v.name ?? '').trim() } : { parent_id: v.parent_id },
        }),
      );
      return dept.id;
    },
    onSuccess: (id) => {
      message.success(t(`departments.done.${kind}`));
      onDone(id);
    },
  });
  const below = subtree(depts, dept.id);
  const title =
    kind === 'add'
      ? t('departments.addUnder', { name: dept.name })
      : kind === 'rename'
        ? t('departments.renameTitle', { name: dept.name })
        : t('departments.moveTitle', { name: dept.name });
  return (
    <Modal
      open
      title={title}
      onCancel={onClose}
      okText={c.t('common.save')}
      okButtonProps={withTestId('dept-save', { loading: save.isPending })}
      onOk={() => form.submit()}
      destroyOnHidden
    >
      <Form
        form={form}
        layout="vertical"
        initialValues={
          kind === 'rename' ? { name: dept.name } : kind === 'move' ? { parent_id: dept.parent_id ?? undefined } : {}
        }
        onFinish={(v) => save.mutate(v)}
      >
        {kind === 'move' ? (
          <Form.Item name="parent_id" label={t('departments.newParent')} rules={[{ required: true }]}>
            {/* A department cannot go below itself: its own subtree is greyed out. */}
            <DepartmentSelect depts={depts} disable={(x) => below.has(x.id)} testId="dept-parent" />
          </Form.Item>
        ) : (
          <Form.Item name="name" label={t('departments.name')} rules={[{ required: true, whitespace: true, max: 128 }]}>
            <Input autoFocus data-testid="dept-name" />
          </Form.Item>
        )}
        {save.error && <Alert type="error" showIcon message={c.err(save.error)} data-testid="dept-error" />}
      </Form>
    </Modal>
  );
}

export const Component = DepartmentsPage;
