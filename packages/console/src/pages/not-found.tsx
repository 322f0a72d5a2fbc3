import { useI18n } from '../i18n/index.js';
import { Link } from '../router.js';

/** Any console path nothing answers: a page with a way home, never raw JSON. */
export function NotFoundPage() {
  const { t } = useI18n();
  return (
    <section className="card narrow" data-testid="not-found">
      <h1>{t('notFound.title')}</h1>
      <p className="muted">{t('notFound.body')}</p>
      <Link to="/devices" className="button primary">
        {t('notFound.home')}
      </Link>
    </section>
  );
}
