import { APP_SCENES, DEVICE_CATEGORIES, DEVICE_CLASSES } from '../../../../protocol/src/enums.js';

/**
 * Seed 002's codes for the model pickers: the Chinese names are the wire values (protocol/enums.ts);
 * the English names are ours, for readers of English (shared reference "seed-002-enums-en").
 * Both are shown in either language, since vendors meet the Chinese ones in WeChat Pay's documents.
 */
const CATEGORY_EN: Record<string, string> = {
  '0': 'Unknown device',
  '1': 'Frog device',
  '2': 'Desktop checkout device',
  '3': 'Industry checkout hardware',
  '4': 'Card reader',
  '5': 'Smart speaker',
  '6': 'Smart barcode scanner',
  '7': 'Unattended self-service device',
  '8': 'Canteen device',
  '9': 'Self-checkout device',
  '10': 'Pilot device',
  '11': 'Turnstile',
  '200': 'Temporary',
};
const CLASS_EN: Record<string, string> = {
  '0': 'Unknown',
  '1': 'Basic',
  '2': 'Mini',
  '3': 'Pro',
  '101': 'Large-screen self-checkout',
  '102': 'Campus card reader',
  '103': 'Vending machine',
  '104': 'Ticket machine',
  '105': 'Power-bank rental station',
  '106': 'Self-service kiosk',
  '107': 'Canteen terminal',
  '108': 'Arcade machine',
  '109': 'Self-service locker',
  '110': 'Handheld device',
  '111': 'Fuel dispenser',
  '112': 'Smart shopping cart',
  '114': 'Desktop single-screen face-pay device',
  '116': 'Desktop dual-screen face-pay device',
  '118': 'Desktop dual-screen POS',
  '120': 'Desktop weighing device',
  '124': 'Medical-insurance device',
  '132': 'Lottery terminal',
  '134': 'EV charger',
  '172': 'Visual-recognition device',
  '180': 'Access-control device',
  '200': 'Temporary',
};
const SCENE_EN: Record<string, string> = { '1': 'SDK mode', '2': 'App mode', '3': 'Offline mode', '4': 'Overseas app mode' };

export interface CodeOption {
  value: string;
  zh: string;
  en: string;
}

const options = (zh: Readonly<Record<string, string>>, en: Record<string, string>): CodeOption[] =>
  Object.keys(zh)
    .sort((a, b) => Number(a) - Number(b))
    .map((value) => ({ value, zh: zh[value]!, en: en[value] ?? '' }));

export const CATEGORY_OPTIONS = options(DEVICE_CATEGORIES, CATEGORY_EN);
export const CLASS_OPTIONS = options(DEVICE_CLASSES, CLASS_EN);
export const SCENE_OPTIONS = options(APP_SCENES, SCENE_EN);

/** "2 · 桌面收银设备 · Desktop checkout device": the UI language's name first. */
export function codeLabel(o: CodeOption | undefined, lang: 'en' | 'zh'): string {
  if (!o) return '—';
  return lang === 'zh' ? `${o.value} · ${o.zh} · ${o.en}` : `${o.value} · ${o.en} · ${o.zh}`;
}

export const byCode = (opts: CodeOption[], code: string | null | undefined) => opts.find((o) => o.value === code);
