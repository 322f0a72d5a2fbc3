import { useQuery } from '@tanstack/react-query';
import { Alert, Card, Empty } from 'antd';
import { useTranslation } from 'react-i18next';
import { useParams } from 'react-router';
import { ApiError, api, unwrap } from '../../api/client.js';
import { type Merchant, MerchantDetail } from '../../components/merchant-detail.js';
import { useI18n } from '../../i18n/index.js';
import { useMe } from '../../session.js';

/**
 * /orgs/:orgId/merchant — merchant self-service for the organisation's super admins: the same merchant detail
 * as the operator's, for their own mchid (keys, APIv3 key, platform key, sub-merchants, inspection import).
 */
export function Component() {
  const { orgId = '' } = useParams();
  const { t } = useTranslation('org');
  const c = useI18n();
  const me = useMe();
  const found = useQuery({
    queryKey: ['/api/v1/orgs', orgId, 'merchant'],
    queryFn: () => unwrap(api.GET('/api/v1/orgs/{orgId}/merchant', { params: { path: { orgId } } })),
    retry: false,
  });
  if (found.error instanceof ApiError && found.error.code === 'MERCHANT_NOT_FOUND') {
    return (
      <Card>
        <Empty description={t('merchant.notMerchant')} data-testid="not-merchant" />
      </Card>
    );
  }
  if (found.error) return <Alert type="error" showIcon message={c.err(found.error)} />;
  const m = (found.data as { merchant?: Merchant } | undefined)?.merchant;
  if (!m) return <Card loading />;
  return <MerchantDetail mchid={m.mchid} operator={me.user.is_operator} />;
}
