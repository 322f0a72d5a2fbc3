import { Alert, Typography } from 'antd';
import type { ReactNode } from 'react';

/**
 * A secret the server shows this once (model secret, seed SecretNo, keys): the value with a copy
 * button and a warning that it will not be shown again.
 */
export function ShownOnce({
  label,
  value,
  warning,
  testId,
}: {
  label: ReactNode;
  value: string;
  warning: ReactNode;
  testId: string;
}) {
  return (
    <Alert
      type="warning"
      showIcon
      style={{ marginBottom: 12 }}
      message={label}
      description={
        <>
          <Typography.Paragraph
            code
            copyable={{ text: value }}
            style={{ wordBreak: 'break-all', marginBottom: 4 }}
            data-testid={testId}
          >
            {value}
          </Typography.Paragraph>
          <Typography.Text type="secondary">{warning}</Typography.Text>
        </>
      }
    />
  );
}
