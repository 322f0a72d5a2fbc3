import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from './errors.js';

/** docs/errors.md and the catalogue must list the same codes with the same status, errcode and message. */
describe('error catalogue', () => {
  const doc = readFileSync(path.resolve(__dirname, '../../../docs/errors.md'), 'utf8');
  const rows = new Map<string, { status: number; errcode: number; message: string }>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|\s*(.+?)\s*\|/.exec(line);
    if (m) rows.set(m[1]!, { status: Number(m[2]), errcode: Number(m[3]), message: m[4]! });
  }

  it('documents every code, and nothing else', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERRORS).sort());
  });

  it.each(Object.entries(ERRORS))('%s matches its row', (code, def) => {
    expect(rows.get(code)).toEqual({ status: def.status, errcode: def.errcode, message: def.message });
  });
});
