import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REASON_IDS, reasonIn } from '../src/pages/vendor/relation-reasons.js';

const LOCALES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/i18n/locales');
const zh = JSON.parse(readFileSync(path.join(LOCALES, 'zh', 'vendor.json'), 'utf8')) as Record<string, string>;
const t = (key: string, vars: Record<string, string>) =>
  (zh[key] ?? key).replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? `{${k}}`);

describe('relation-file line errors in Chinese', () => {
  it('has words for every known reason', () => {
    for (const id of REASON_IDS) expect(zh[`relations.why.${id}`], id).toBeTruthy();
  });

  it('words the server messages with their values, and leaves unknown ones as sent', () => {
    expect(reasonIn('zh', 'SN NOSUCHSN1 is not registered', t)).toBe('SN NOSUCHSN1 未注册');
    expect(reasonIn('zh', 'DeviceKey 861234000000001 is already on line 2 of this file', t)).toBe(
      'DeviceKey 861234000000001 已在本文件第 2 行出现',
    );
    expect(reasonIn('zh', 'Unknown ProductKey pkNope: it is not a model of this vendor', t)).toBe(
      '未知的 ProductKey pkNope：不是本厂商的型号',
    );
    expect(reasonIn('zh', 'Something new', t)).toBe('Something new');
    expect(reasonIn('en', 'SN X is not registered', t)).toBe('SN X is not registered');
  });
});
