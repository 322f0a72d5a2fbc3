import ExcelJS from 'exceljs';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { manifestXlsx } from './manifest-xlsx.js';

async function bytes(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

describe('manifest.xlsx writer', () => {
  it('writes every row as text a spreadsheet reader gets back exactly, markup and spaces included', async () => {
    const header = ['SN', 'PK', 'QR content'];
    const rows = [
      ['BND00000001X', 'pk<1>', 'pk=p&sn=BND00000001X&v=1'],
      [' lead', 'trail ', '=1+2'], // spaces kept; never a formula
      ['ctl\u0001char', '中文', '"quoted" \'x\''],
    ];
    const many = 5000; // several 64 KB chunks of sheet XML
    const all = Array.from({ length: many }, (_, i) => rows[i % rows.length]!.map((v) => `${v}${i}`));
    const buf = await bytes(manifestXlsx(header, [20, 10, 60], many, (i) => all[i]!, new Date(Date.UTC(2026, 11, 5))));
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(buf as unknown as ArrayBuffer);
    const ws = wb.worksheets[0]!;
    expect(ws.name).toBe('manifest');
    const got: string[][] = [];
    ws.eachRow((row) => {
      got.push((row.values as unknown[]).slice(1).map((v) => String(v)));
    });
    // XML 1.0 cannot carry U+0001: it is dropped, everything else is as written.
    const expected = all.map((r) => r.map((v) => v.replace('\u0001', '')));
    expect(got).toEqual([header, ...expected]);
    expect(ws.getCell('A1').font?.bold).toBe(true);
    expect(ws.getCell('A2').font?.bold).toBeFalsy();
    // A well-formed package: the parts Excel needs, the sheet deflated.
    const files = unzipSync(new Uint8Array(buf));
    expect(Object.keys(files).sort()).toEqual(
      [
        '[Content_Types].xml',
        '_rels/.rels',
        'xl/_rels/workbook.xml.rels',
        'xl/styles.xml',
        'xl/workbook.xml',
        'xl/worksheets/sheet1.xml',
      ].sort(),
    );
    expect(Buffer.from(files['xl/worksheets/sheet1.xml']!).toString()).toContain('state="frozen"');
  });
});
