import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest } from './manifest.js';

describe('batch manifest', () => {
  it('reads the batch secrets CSV, with and without the shared seed', () => {
    expect(parseManifest('SN,SecretNo\r\nA1,aa\r\nB2,bb\r\n')).toEqual([
      { sn: 'A1', secretNo: 'aa' },
      { sn: 'B2', secretNo: 'bb' },
    ]);
    const seeded = 'SN,SecretNo,SeedSecretNo\r\nA1,aa,ss\r\n';
    expect(parseManifest(seeded)).toEqual([{ sn: 'A1', secretNo: 'aa', seedSecretNo: 'ss' }]);
    // --seed-only: the device starts as Lombo does with only the seed in flash.
    expect(parseManifest(seeded, { seedOnly: true })).toEqual([{ sn: 'A1', seedSecretNo: 'ss' }]);
  });

  it('accepts other spellings of the columns, quoted cells, a BOM, and JSON', () => {
    expect(parseManifest('\uFEFF"sn","secret_no","active code"\n"A1","aa","x,y"\n')).toEqual([
      { sn: 'A1', secretNo: 'aa', activeCode: 'x,y' },
    ]);
    expect(parseManifest('[{"sn":"A1","secret_no":"aa"}]')).toEqual([{ sn: 'A1', secretNo: 'aa' }]);
    expect(parseManifest('{"sn":"A1","SecretNo":"aa"}\n{"sn":"B2","seed_secret_no":"ss"}\n')).toEqual([
      { sn: 'A1', secretNo: 'aa' },
      { sn: 'B2', seedSecretNo: 'ss' },
    ]);
  });

  it('lists every bad line and returns nothing', () => {
    const text = 'SN,SecretNo\nA1,aa\nbad sn,bb\na1,cc\nC3,\n';
    let err: unknown;
    try {
      parseManifest(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).problems).toEqual([
      'line 3: SN must be 1–128 characters of 0-9, A-Z, a-z',
      'line 4: SN a1 appears twice',
      'line 5: C3 has neither a SecretNo nor a SeedSecretNo',
    ]);
    expect(() => parseManifest('serial,secret\nA1,aa\n')).toThrow(/no SN column/);
    expect(() => parseManifest('  \n')).toThrow(/empty/);
    expect(() => parseManifest('SN,SecretNo\nA1,aa\n', { seedOnly: true })).toThrow(/no SeedSecretNo/);
  });
});
