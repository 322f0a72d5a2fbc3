import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Every string the console shows is in both languages: each namespace has the same keys in en and zh. */
const LOCALES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/i18n/locales');
const read = (lang: string, file: string): Record<string, string> =>
  JSON.parse(readFileSync(path.join(LOCALES, lang, file), 'utf8'));

describe('console text', () => {
  const files = [...new Set([...readdirSync(path.join(LOCALES, 'en')), ...readdirSync(path.join(LOCALES, 'zh'))])];
  // zh/errors.json is zh-only by design: English shows the server's own message for a code.
  for (const file of files.filter((f) => f !== 'errors.json')) {
    it(`${file}: en and zh have the same keys, none empty`, () => {
      const en = read('en', file);
      const zh = read('zh', file);
      expect(Object.keys(zh).filter((k) => !(k in en))).toEqual([]);
      expect(Object.keys(en).filter((k) => !(k in zh))).toEqual([]);
      expect(Object.entries({ ...en, ...zh }).filter(([, v]) => typeof v !== 'string' || v.trim() === '')).toEqual([]);
    });
  }
  it('has the namespaces the pages load', () => {
    expect(files).toContain('common.json');
  });
});
