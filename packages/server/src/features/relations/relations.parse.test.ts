import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import { describe, expect, it } from 'vitest';
import { columnForHeader } from './relations.columns.js';
import { type FileFormat, type RawRecord, readRecords, sniffDelimiter, sniffEncoding } from './relations.parse.js';
import { checkDeviceKey, checkFingerprint, deviceKeyNorm } from './relations.rules.js';

async function records(input: Buffer | Buffer[], format: FileFormat = 'csv'): Promise<RawRecord[]> {
  const out: RawRecord[] = [];
  for await (const r of readRecords(Readable.from(Array.isArray(input) ? input : [input]), format)) out.push(r);
  return out;
}

describe('relation file reading (no storage)', () => {
  it('numbers lines as a text editor does, across CRLF, blank lines and quoted line breaks', async () => {
    const text = '\uFEFFa,b\r\n1,2\r\n\r\n"multi\r\nline\r\nname",3\r\n4,5\r\n"x\ny",6\r\n7,8';
    const recs = await records(Buffer.from(text, 'utf8'));
    expect(recs.map((r) => [r.line, r.cells[0]])).toEqual([
      [1, 'a'],
      [2, '1'],
      [3, ''],
      [4, 'multi\r\nline\r\nname'],
      [7, '4'],
      [8, 'x\ny'],
      [10, '7'],
    ]);
  });

  it('strips the BOM from the first header cell', async () => {
    const recs = await records(Buffer.from('\uFEFF*设备DeviceKey,*产品ProductKey\n', 'utf8'));
    expect(recs[0]!.cells[0]).toBe('*设备DeviceKey');
  });

  it('reads a chunked upload whose multi-byte characters are cut between chunks', async () => {
    const whole = Buffer.from('*设备DeviceKey,设备名称\n861234567890123,收银机一号\n', 'utf8');
    const parts = Array.from({ length: whole.length }, (_, i) => whole.subarray(i, i + 1));
    const recs = await records(parts);
    expect(recs[1]!.cells).toEqual(['861234567890123', '收银机一号']);
  });

  it('reads GB18030 (Excel "CSV" on Chinese Windows) and UTF-16 files', async () => {
    const gbk = Buffer.from([
      // "*设备DeviceKey\r\n" in GB18030: 设 = C9E8, 备 = B1B8
      0x2a,
      0xc9,
      0xe8,
      0xb1,
      0xb8,
      ...Buffer.from('DeviceKey\r\n861234567890123\r\n', 'latin1'),
    ]);
    expect(sniffEncoding(gbk)).toBe('gb18030');
    const recs = await records(gbk);
    expect(recs[0]!.cells[0]).toBe('*设备DeviceKey');
    expect(recs[1]!.cells[0]).toBe('861234567890123');

    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('*设备DeviceKey\r\n86\r\n', 'utf16le')]);
    expect((await records(utf16)).map((r) => r.cells[0])).toEqual(['*设备DeviceKey', '86']);
  });

  it('takes semicolons or tabs as the delimiter when the header line uses them', async () => {
    expect(sniffDelimiter('a;b;c\r\n1,5;2;3')).toBe(';');
    expect(sniffDelimiter('a\tb\n')).toBe('\t');
    expect(sniffDelimiter('a,b\n')).toBe(',');
    const recs = await records(Buffer.from('DeviceKey;ProductKey\n86;pk\n'));
    expect(recs[1]!.cells).toEqual(['86', 'pk']);
  });

  it('reports an unreadable csv with the line where it broke', async () => {
    const bad = Buffer.from('a,b\n1,2\n"open,3\n4,5\n');
    await expect(records(bad)).rejects.toMatchObject({ name: 'RelationFileError', line: 3 });
  });

  it('reads the first tab of an xlsx with sheet row numbers and flags numbers Excel rounded', async () => {
    const wb = new ExcelJS.Workbook();
    const notesFirstInFile = wb.addWorksheet('Data');
    notesFirstInFile.addRow(['*DeviceKey', '*ProductKey', 'Device SN']);
    notesFirstInFile.addRow([861234567890123, 'pk', 'SN1']);
    notesFirstInFile.getRow(4).values = ['A1:B2:C3:D4:E5:F6', 'pk', Number('123456789123456789')];
    notesFirstInFile.getRow(5).values = [
      { richText: [{ text: 'AB' }, { text: 'CD' }] },
      { formula: 'LOWER("PK")', result: 'pk' },
    ];
    wb.addWorksheet('Notes').addRow(['not read']);
    const buf = Buffer.from(await wb.xlsx.writeBuffer());
    const recs = await records(buf, 'xlsx');
    expect(recs.map((r) => r.line)).toEqual([1, 2, 4, 5]);
    expect(recs[1]!.cells).toEqual(['861234567890123', 'pk', 'SN1']);
    expect(recs[2]!.problems).toEqual([{ index: 2, message: expect.stringMatching(/format the column as Text/) }]);
    expect(recs[3]!.cells).toEqual(['ABCD', 'pk']);
  });

  it('says a file that is not an xlsx cannot be read', async () => {
    await expect(records(Buffer.from('DeviceKey,ProductKey\n1,2\n'), 'xlsx')).rejects.toMatchObject({
      name: 'RelationFileError',
      message: expect.stringMatching(/xlsx cannot be read/),
    });
  });

  it('carries the upload error through instead of waiting for bytes that never come', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.from('PK\u0003\u0004partial'));
        this.destroy(new Error('connection reset'));
      },
    });
    const run = async () => {
      for await (const _ of readRecords(failing, 'xlsx')) {
        // drain
      }
    };
    await expect(run()).rejects.toThrow('connection reset');
  });
});

describe('relation cell rules', () => {
  it('matches headers in Chinese or English, with or without *, ignoring case, spaces and full-width forms', () => {
    for (const h of ['*设备DeviceKey', '设备DeviceKey', '*DeviceKey', ' devicekey ', 'DEVICE KEY', '＊ＤｅｖｉｃｅＫｅｙ']) {
      expect(columnForHeader(h), h).toBe('device_key');
    }
    expect(columnForHeader('Certificate Fingerprint')).toBe('cert_fingerprint');
    expect(columnForHeader('设备SN')).toBe('sn');
    expect(columnForHeader('备注')).toBeUndefined();
  });

  it('normalises device keys so one MAC written two ways is one key', () => {
    expect(deviceKeyNorm('AA:BB:CC:00:11:22')).toBe(deviceKeyNorm('aabbcc-001122'));
    expect(checkDeviceKey('861234567890123')).toEqual({ ok: true, value: { key: '861234567890123', norm: '861234567890123' } });
    expect(checkDeviceKey('8.61235E+14')).toMatchObject({ ok: false, message: expect.stringMatching(/scientific/) });
    expect(checkDeviceKey('--')).toMatchObject({ ok: false });
    expect(checkDeviceKey('x'.repeat(65))).toMatchObject({ ok: false });
  });

  it('takes a SHA-1 fingerprint bare or colon-separated and stores it bare in lower case', () => {
    const hex = 'A94A8FE5CCB19BA61C4C0873D391E987982FBBD3';
    const colons = hex.match(/../g)!.join(':');
    expect(checkFingerprint(hex)).toEqual({ ok: true, value: hex.toLowerCase() });
    expect(checkFingerprint(colons)).toEqual({ ok: true, value: hex.toLowerCase() });
    expect(checkFingerprint(hex.slice(1))).toMatchObject({ ok: false });
    expect(checkFingerprint(`${hex.slice(0, 39)}G`)).toMatchObject({ ok: false });
  });
});
