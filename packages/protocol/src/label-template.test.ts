import { describe, expect, it } from 'vitest';
import { compileLabelTemplate, labelTemplatesOverlap, validateLabelTemplate } from './label-template.js';
import { labelContent } from './qr.js';

const d = { pk: 'pkAcme1', sn: 'SN0001', hwCode: 'Q2hvb3Nl-_x' };

describe('custom label templates: reading labels back', () => {
  it('reads back exactly what labelContent printed', () => {
    for (const t of [
      'ACME;{pk};{sn}',
      'https://acme.example/d?p={pk}&s={sn}',
      '[{sn}] {pk}',
      'X:{pk}/{sn}/{hw_code}.',
      'a.b*c;{pk};{sn}$',
    ]) {
      const text = labelContent('https://x', 'custom', t, d);
      const m = compileLabelTemplate(t).match(text);
      expect(m, t).toMatchObject({ pk: d.pk, sn: d.sn });
      if (t.includes('{hw_code}')) expect(m?.hw_code).toBe(d.hwCode);
    }
  });

  it('is anchored, escapes literals, and keeps each value to its class', () => {
    const m = compileLabelTemplate('ACME;{pk};{sn}');
    expect(m.match('ACME;p1;S1')).toEqual({ pk: 'p1', sn: 'S1' });
    expect(m.match('xACME;p1;S1')).toBeNull();
    expect(m.match('ACME;p1;S1 ')).toBeNull();
    expect(m.match('ACME;p1;S-1')).toBeNull(); // an SN has no '-'
    expect(m.match('ACME;;S1')).toBeNull();
    expect(compileLabelTemplate('a.b;{pk};{sn}').match('aXb;p1;S1')).toBeNull(); // '.' is literal
    expect(m.match('pk=p1&sn=S1&v=1')).toBeNull();
  });

  it('binds the product key as literal text', () => {
    const m = compileLabelTemplate('ACME;{pk};{sn}', { pk: 'pkA' });
    expect(m.match('ACME;pkA;S1')).toEqual({ pk: 'pkA', sn: 'S1' });
    expect(m.match('ACME;pkB;S1')).toBeNull();
  });

  it('refuses templates that cannot be read back, or not one way only', () => {
    expect(validateLabelTemplate('ACME;{pk};{sn}')).toEqual([]);
    expect(validateLabelTemplate('ACME;{sn}')).toEqual(['template must contain {pk} and {sn} (missing {pk})']);
    expect(validateLabelTemplate('ACME;{pk};{hw_code}')).toEqual(['template must contain {pk} and {sn} (missing {sn})']);
    expect(validateLabelTemplate('')).toEqual(['template must be 1–512 characters']);
    expect(validateLabelTemplate('{pk};{sn};{sn}')).toContain('{sn} may appear only once');
    expect(validateLabelTemplate('{pk}{sn}')[0]).toMatch(/\{pk\} must be followed by a separator/);
    expect(validateLabelTemplate('{pk}-{sn}')[0]).toMatch(/\{pk\} must be followed by a separator/);
    expect(validateLabelTemplate('{sn}-{pk}')).toEqual([]); // an SN has no '-'
    expect(validateLabelTemplate('{sn}A{pk}')[0]).toMatch(/\{sn\} must be followed/);
  });
});

describe('custom label templates: overlap', () => {
  const c = (t: string, pk?: string) => compileLabelTemplate(t, pk ? { pk } : {});
  it('finds templates that could read the same text', () => {
    expect(labelTemplatesOverlap(c('ACME;{pk};{sn}'), c('ACME;{pk};{sn}'))).toBe(true);
    expect(labelTemplatesOverlap(c('ACME;{pk};{sn}', 'pkA'), c('ACME;{pk};{sn}', 'pkA'))).toBe(true);
    // ACME;pkA;X;1 vs {pk} of "pkA;X" is impossible (';' is no pk character), but the SN and pk classes meet:
    expect(labelTemplatesOverlap(c('A{sn};{pk}', 'p1'), c('{sn};{pk}', 'p1'))).toBe(true); // "AB;p1"
    expect(labelTemplatesOverlap(c('ACME:{pk}:{sn}'), c('{pk}:{sn}'))).toBe(false); // ':' is not in pk
    expect(labelTemplatesOverlap(c('ID {pk} {sn}', 'x'), c('ID {pk} {sn}X', 'x'))).toBe(true); // SN may end in X
  });

  it('tells apart templates whose literals, or bound product keys, differ', () => {
    expect(labelTemplatesOverlap(c('ACME;{pk};{sn}', 'pkA'), c('ACME;{pk};{sn}', 'pkB'))).toBe(false);
    expect(labelTemplatesOverlap(c('ACME;{pk};{sn}', 'pkA'), c('ACME;{pk};{sn}', 'pkA1'))).toBe(false);
    expect(labelTemplatesOverlap(c('ACME;{pk};{sn}'), c('ZETA;{pk};{sn}'))).toBe(false);
    expect(labelTemplatesOverlap(c('{pk};{sn};END'), c('{pk};{sn};FIN'))).toBe(false);
    expect(labelTemplatesOverlap(c('{pk};{sn}'), c('{pk};{sn};x'))).toBe(false); // ';' ends an SN
    expect(labelTemplatesOverlap(c('{pk};{sn}', 'p'), c('{pk}/{sn}', 'p'))).toBe(false);
  });
});
