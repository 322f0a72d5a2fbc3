import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, unwrap } from '../../api/client.js';
import { useI18n } from '../../i18n/index.js';
import { navigate } from '../../router.js';
import { useMe, useSession } from '../../session.js';
import { Notice } from '../../ui.js';
import { NewPasswordFields, passwordProblem } from './public-frame.js';

/** /account: your name, your password, your API tokens, and signing out everywhere. */
export function Component() {
  const { t } = useTranslation('account');
  return (
    <div className="narrow" data-testid="account-page">
      <h1>{t('account.title')}</h1>
      <Profile />
      <Password />
      <Tokens />
      <SignOutEverywhere />
    </div>
  );
}

function Profile() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const me = useMe();
  const { refresh } = useSession();
  const [name, setName] = useState(me.user.display_name);
  const save = useMutation({
    mutationFn: () => unwrap(api.PATCH('/api/v1/me', { body: { display_name: name.trim() } })),
    onSuccess: () => refresh(),
  });
  return (
    <section className="card">
      <h2>{t('account.profile')}</h2>
      <dl className="facts">
        <dt>{t('account.username')}</dt>
        <dd className="mono" data-testid="account-username">
          {me.user.username}
        </dd>
      </dl>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <label>
          {t('field.displayName')}
          <div className="row">
            <input name="display_name" value={name} onChange={(e) => setName(e.target.value)} maxLength={128} required />
            <button type="submit" disabled={save.isPending || !name.trim()} data-testid="account-save-name">
              {t('account.save')}
            </button>
          </div>
        </label>
        {save.isSuccess && <Notice kind="ok">{t('account.saved')}</Notice>}
        {save.error && <Notice kind="error">{c.err(save.error)}</Notice>}
      </form>
    </section>
  );
}

function Password() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const qc = useQueryClient();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setDone(false);
    const problem = passwordProblem(next, confirm);
    if (problem) return setError(t(problem));
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/api/v1/me/password', { body: { current_password: current, new_password: next } }));
      setCurrent('');
      setNext('');
      setConfirm('');
      setDone(true);
      await qc.invalidateQueries({ queryKey: ['/api/v1/me/tokens'] });
    } catch (x) {
      setError(c.err(x));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card">
      <h2>{t('account.password')}</h2>
      <p className="muted small">{t('account.passwordHint')}</p>
      <form onSubmit={submit} data-testid="account-password-form">
        <label>
          {t('field.currentPassword')}
          <input
            name="current_password"
            type="password"
            autoComplete="current-password"
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
            required
          />
        </label>
        <NewPasswordFields
          password={next}
          confirm={confirm}
          onPassword={setNext}
          onConfirm={setConfirm}
          name="new_password"
          label="field.newPassword"
        />
        {error && <Notice kind="error">{error}</Notice>}
        {done && (
          <Notice kind="ok" testId="account-password-changed">
            {t('account.passwordChanged')}
          </Notice>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {t('account.changePassword')}
          </button>
        </div>
      </form>
    </section>
  );
}

function Tokens() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const qc = useQueryClient();
  const key = ['/api/v1/me/tokens'];
  const tokens = useQuery({ queryKey: key, queryFn: () => unwrap(api.GET('/api/v1/me/tokens')) });
  const [name, setName] = useState('');
  const [fresh, setFresh] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () => unwrap(api.POST('/api/v1/me/tokens', { body: { name: name.trim() || 'personal' } })),
    onSuccess: (r) => {
      setFresh(r.token ?? null);
      setCopied(false);
      setName('');
      void qc.invalidateQueries({ queryKey: key });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE('/api/v1/me/tokens/{id}', { params: { path: { id } } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: key }),
  });
  const list = tokens.data?.tokens ?? [];
  return (
    <section className="card">
      <h2>{t('account.tokens')}</h2>
      <p className="muted small">{t('account.tokensHint')}</p>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <label>
          {t('account.tokenName')}
          <div className="row">
            <input
              name="token_name"
              value={name}
              placeholder={t('account.tokenNamePlaceholder')}
              maxLength={128}
              onChange={(e) => setName(e.target.value)}
            />
            <button type="submit" className="primary" disabled={create.isPending} data-testid="token-create">
              {t('account.createToken')}
            </button>
          </div>
        </label>
      </form>
      {create.error && <Notice kind="error">{c.err(create.error)}</Notice>}
      {fresh && (
        <div className="notice notice-ok" data-testid="token-fresh">
          <p className="tiny">{t('account.tokenCreated')}</p>
          <div className="row">
            <code className="mono" data-testid="token-value">
              {fresh}
            </code>
            <button
              type="button"
              className="small"
              onClick={() => {
                void navigator.clipboard?.writeText(fresh).then(() => setCopied(true));
              }}
            >
              {copied ? t('account.copied') : t('account.copy')}
            </button>
          </div>
        </div>
      )}
      {tokens.error && <Notice kind="error">{c.err(tokens.error)}</Notice>}
      {revoke.error && <Notice kind="error">{c.err(revoke.error)}</Notice>}
      {list.length === 0 && !tokens.isLoading ? (
        <p className="muted">{t('account.noTokens')}</p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="token-table">
            <thead>
              <tr>
                <th>{t('account.tokenName')}</th>
                <th>{t('account.created')}</th>
                <th>{t('account.lastUsed')}</th>
                <th>{t('account.status')}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((k) => (
                <tr key={k.id} data-testid={`token-${k.name}`}>
                  <td className="wrap">{k.name}</td>
                  <td className="small">{c.date(k.created_at ?? null)}</td>
                  <td className="small" data-testid="token-last-used">
                    {c.ago(k.last_used_at ?? null)}
                  </td>
                  {/* Status and the revoke button share a column: phones hide a table's fifth. */}
                  <td className="small">
                    {k.revoked_at ? t('account.revoked') : t('account.active')}
                    {!k.revoked_at && (
                      <button
                        type="button"
                        className="small danger-outline"
                        style={{ marginLeft: 8 }}
                        disabled={revoke.isPending}
                        data-testid="token-revoke"
                        onClick={() => {
                          if (window.confirm(t('account.revokeConfirm', { name: k.name }))) revoke.mutate(k.id ?? '');
                        }}
                      >
                        {t('account.revoke')}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function SignOutEverywhere() {
  const { t } = useTranslation('account');
  const c = useI18n();
  const { refresh } = useSession();
  const [error, setError] = useState<string | null>(null);
  const go = async () => {
    if (!window.confirm(t('account.signOutAllConfirm'))) return;
    try {
      await unwrap(api.DELETE('/api/v1/me/sessions'));
      await refresh().catch(() => undefined);
      navigate('/login', { replace: true });
    } catch (x) {
      setError(c.err(x));
    }
  };
  return (
    <section className="card">
      <h2>{t('account.signOutAll')}</h2>
      <p className="muted small">{t('account.signOutAllHint')}</p>
      {error && <Notice kind="error">{error}</Notice>}
      <button type="button" className="danger" onClick={go} data-testid="sign-out-everywhere">
        {t('account.signOutAll')}
      </button>
    </section>
  );
}
