/**
 * The columns of a relation file (Quectel batch-import template, reference §B3) and how a header
 * cell is recognised. Headers match by name, Chinese or English, with or without the `*` mark,
 * ignoring case, whitespace, underscores and full-width forms; the order of columns is free.
 */
export type ColumnKey =
  | 'device_key'
  | 'product_key'
  | 'sn'
  | 'device_name'
  | 'cert_fingerprint'
  | 'camera_sn'
  | 'app_scene_code'
  | 'operating_system';

export interface ColumnDef {
  key: ColumnKey;
  zh: string;
  en: string;
  required: boolean;
  /** Part of the downloadable template (the Quectel five); the others are accepted extras (seed 002). */
  inTemplate: boolean;
  /** Further names accepted in a header, already normalised. */
  aliases: string[];
}

export const COLUMNS: readonly ColumnDef[] = [
  { key: 'device_key', zh: '设备DeviceKey', en: 'DeviceKey', required: true, inTemplate: true, aliases: ['dk'] },
  { key: 'product_key', zh: '产品ProductKey', en: 'ProductKey', required: true, inTemplate: true, aliases: ['pk'] },
  { key: 'sn', zh: '设备SN', en: 'Device SN', required: false, inTemplate: true, aliases: ['sn'] },
  { key: 'device_name', zh: '设备名称', en: 'Device Name', required: false, inTemplate: true, aliases: [] },
  { key: 'cert_fingerprint', zh: '证书指纹', en: 'Certificate Fingerprint', required: false, inTemplate: true, aliases: [] },
  { key: 'camera_sn', zh: '摄像头序列号', en: 'Camera SN', required: false, inTemplate: false, aliases: [] },
  { key: 'app_scene_code', zh: '刷脸应用软件模式代码', en: 'App Scene Code', required: false, inTemplate: false, aliases: [] },
  { key: 'operating_system', zh: '刷脸应用操作系统', en: 'Operating System', required: false, inTemplate: false, aliases: [] },
];

export type Lang = 'zh' | 'en';

/** The header text of a column as the template writes it: `*` marks a required column. */
export function headerText(c: ColumnDef, lang: Lang): string {
  return (c.required ? '*' : '') + (lang === 'zh' ? c.zh : c.en);
}

/** BOM, `*`, whitespace and underscores dropped; full-width forms folded (NFKC); lower case. */
export function normaliseHeader(h: string): string {
  return h
    .replace(/^\uFEFF/, '')
    .normalize('NFKC')
    .replace(/[\s*_]/g, '')
    .toLowerCase();
}

const BY_NAME = new Map<string, ColumnKey>();
for (const c of COLUMNS) {
  for (const name of [c.zh, c.en, c.key, ...c.aliases]) BY_NAME.set(normaliseHeader(name), c.key);
}

export function columnForHeader(h: string): ColumnKey | undefined {
  return BY_NAME.get(normaliseHeader(h));
}

export function columnDef(key: ColumnKey): ColumnDef {
  return COLUMNS.find((c) => c.key === key)!;
}
