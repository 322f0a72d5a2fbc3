import i18next, { type BackendModule } from 'i18next';
import { useMemo } from 'react';
import { initReactI18next, useTranslation } from 'react-i18next';
import { ApiError } from '../api/client.js';
import type enCommon from './locales/en/common.json';

/**
 * Text through i18next + react-i18next. Every namespace is a small chunk of its own, loaded for the one
 * language in use: `common` (phone pages and the shell) and the zh error texts before the first render
 * (main.tsx awaits `i18nReady`), the others (org, operator, account, vendor, …) when a page first asks
 * for them. So the scan → bind path carries neither the admin screens' words nor the other language.
 * en and zh have the same keys (packages/console/test/i18n.test.ts), so nothing falls back.
 * Keys are flat ("nav.devices"); placeholders are {name}.
 */
export type Lang = 'en' | 'zh';
export type Key = keyof typeof enCommon;

const STORE = 'bindery.lang';
const lazyNamespaces = import.meta.glob<{ default: Record<string, string> }>('./locales/*/*.json');

const lazyBackend: BackendModule = {
  type: 'backend',
  init() {},
  read(lng, ns, done) {
    const load = lazyNamespaces[`./locales/${lng}/${ns}.json`];
    if (!load) return done(null, {});
    load().then(
      (m) => done(null, m.default),
      (e: Error) => done(e, false),
    );
  },
};

function initialLang(): Lang {
  try {
    const s = localStorage.getItem(STORE);
    if (s === 'en' || s === 'zh') return s;
  } catch {
    // storage blocked: follow the browser
  }
  return navigator.language.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export const i18n = i18next.createInstance();
export const i18nReady = i18n
  .use(lazyBackend)
  .use(initReactI18next)
  .init({
    lng: initialLang(),
    fallbackLng: false,
    supportedLngs: ['en', 'zh'],
    // errors: the zh wording of server codes (English shows the server's own message; there is no en file).
    ns: ['common', 'errors'],
    defaultNS: 'common',
    keySeparator: false,
    nsSeparator: false,
    interpolation: { escapeValue: false, prefix: '{', suffix: '}' },
    returnNull: false,
    react: { useSuspense: true },
  });
const setHtmlLang = (l: string) => {
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en';
};
setHtmlLang(i18n.language);
i18n.on('languageChanged', (l) => {
  setHtmlLang(l);
  try {
    localStorage.setItem(STORE, l);
  } catch {
    // not remembered, still switched
  }
});

export interface I18n {
  lang: Lang;
  setLang(l: Lang): void;
  t(key: Key, vars?: Record<string, string | number>): string;
  /** A refusal in words: Chinese from the code, English from the server. */
  err(e: unknown): string;
  /** A scan verdict in words. */
  validity(v: string, serverMessage: string): string;
  date(iso: string | null): string;
  ago(iso: string | null): string;
}

/** A server refusal in the UI language: zh from its code where known, else the server's own (English) words. */
export function errorText(e: unknown, lang: string = i18n.language): string {
  if (e instanceof ApiError)
    return lang === 'zh' ? i18n.t(`error.${e.code}`, { ns: 'errors', lng: 'zh', defaultValue: e.message }) : e.message;
  return e instanceof Error ? e.message : String(e);
}

/** The zh message for a code from the server, for the scan page's owner reasons. */
export function reasonText(lang: Lang, code: string, message: string): string {
  return lang === 'zh' ? i18n.t(`error.${code}`, { ns: 'errors', lng: 'zh', defaultValue: message }) : message;
}

export function formatDate(iso: string | null, lang: string = i18n.language): string {
  return iso ? new Date(iso).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—';
}

/** The common namespace with the console's helpers for errors, verdicts and times. */
export function useI18n(): I18n {
  const { t, i18n: inst } = useTranslation('common');
  const lang: Lang = inst.language === 'zh' ? 'zh' : 'en';
  return useMemo<I18n>(() => {
    const tt = (key: Key, vars?: Record<string, string | number>) => t(key, vars ?? {});
    const date = (iso: string | null) => (iso ? formatDate(iso, lang) : tt('common.never'));
    return {
      lang,
      setLang: (l) => void inst.changeLanguage(l),
      t: tt,
      err: (e) => errorText(e, lang),
      validity: (v, m) => (lang === 'zh' ? inst.t(`validity.${v}`, { ns: 'errors', lng: 'zh', defaultValue: m }) : m),
      date,
      ago(iso) {
        if (!iso) return tt('common.never');
        const s = (Date.now() - new Date(iso).getTime()) / 1000;
        if (s < 60) return tt('time.justNow');
        if (s < 3600) return tt('time.minutes', { n: Math.floor(s / 60) });
        if (s < 86400) return tt('time.hours', { n: Math.floor(s / 3600) });
        return date(iso);
      },
    };
  }, [t, inst, lang]);
}
