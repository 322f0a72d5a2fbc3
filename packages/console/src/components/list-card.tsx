import { Alert, Button, Card, Modal } from 'antd';
import type { ReactNode } from 'react';
import { withTestId } from './test-id.js';

/**
 * An operator list page (vendors, merchants): a card titled with what it lists, its "new" button
 * that opens the create modal, the list's load error, the list itself (`children`).
 */
export function ListCard({
  title,
  newLabel,
  newTestId,
  onNew,
  error,
  children,
}: {
  title: string;
  newLabel: string;
  newTestId: string;
  onNew: () => void;
  /** The list's load error, already in words; nothing when it loaded. */
  error: string | null;
  children: ReactNode;
}) {
  return (
    <Card
      title={title}
      extra={
        <Button type="primary" onClick={onNew} data-testid={newTestId}>
          {newLabel}
        </Button>
      }
    >
      {error && <Alert type="error" showIcon message={error} />}
      {children}
    </Card>
  );
}

/** What such a list's table shares: one page up to 50 rows, pages of 50 past that, sideways scrolling. */
export function listTableProps<T>(rows: T[], loading: boolean, emptyText: string, testId: string) {
  return {
    size: 'middle' as const,
    loading,
    dataSource: rows,
    pagination: rows.length > 50 ? { pageSize: 50 } : (false as const),
    scroll: { x: 'max-content' as const },
    locale: { emptyText },
    'data-testid': testId,
  };
}

/** The create form's modal: OK submits the form, spins while the request runs, and the form is dropped on close. */
export function CreateModal({
  open,
  title,
  okText,
  pending,
  okTestId,
  onCancel,
  onOk,
  children,
}: {
  open: boolean;
  title: string;
  okText: string;
  pending: boolean;
  okTestId: string;
  onCancel: () => void;
  onOk: () => void;
  children: ReactNode;
}) {
  return (
    <Modal
      open={open}
      title={title}
      onCancel={onCancel}
      onOk={onOk}
      okText={okText}
      confirmLoading={pending}
      okButtonProps={withTestId(okTestId)}
      destroyOnHidden
    >
      {children}
    </Modal>
  );
}
