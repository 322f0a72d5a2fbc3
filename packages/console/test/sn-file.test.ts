import { describe, expect, it } from 'vitest';
import { readSnFile, SN_FILE_MAX_BYTES } from '../src/components/campaigns/sn-file.js';

/** The campaign form's SN file reader (components/campaigns/sn-file.ts), on the platform's File. */
describe('campaign SN files', () => {
  const file = (name: string, body: string | Uint8Array<ArrayBuffer>) => new File([body], name);

  it("reads a CSV's first column (quoted or not, any separator), skipping an SN header and repeats", async () => {
    const csv = '\uFEFFSN,site\r\nA001,room 1\r\n"A002","room, 2"\r\nA003;x\r\nA004\tz\r\n\r\nA001,again\r\n';
    expect(await readSnFile(file('list.csv', csv))).toEqual({ ok: true, sns: ['A001', 'A002', 'A003', 'A004'] });
    // A first row that is an SN stays.
    expect(await readSnFile(file('list.csv', 'B001,x\nB002,y\n'))).toEqual({ ok: true, sns: ['B001', 'B002'] });
  });

  it('reads a text file as pasted SNs are separated', async () => {
    expect(await readSnFile(file('list.txt', '序列号\nC001 C002,C003;\n\nC004\n'))).toEqual({
      ok: true,
      sns: ['C001', 'C002', 'C003', 'C004'],
    });
  });

  it('refuses files over 1 MB, spreadsheets, binary and empty files, and lists past the limit', async () => {
    expect(await readSnFile(file('big.txt', 'A'.repeat(SN_FILE_MAX_BYTES + 1)))).toEqual({ ok: false, error: 'too_large' });
    expect(await readSnFile(file('exact.txt', `${'A'.repeat(SN_FILE_MAX_BYTES - 1)}\n`))).toMatchObject({ ok: true });
    expect(await readSnFile(file('sheet.xlsx', 'A001'))).toEqual({ ok: false, error: 'xlsx' });
    expect(await readSnFile(file('renamed.csv', new Uint8Array([0x50, 0x4b, 3, 4, 0])))).toEqual({ ok: false, error: 'xlsx' });
    expect(await readSnFile(file('bytes.txt', new Uint8Array([0xff, 0xfe, 0x41])))).toEqual({ ok: false, error: 'not_text' });
    expect(await readSnFile(file('blank.csv', 'sn\n\n'))).toEqual({ ok: false, error: 'empty' });
    const many = Array.from({ length: 100_001 }, (_, i) => `D${i}`).join('\n');
    expect(await readSnFile(file('many.txt', many))).toEqual({ ok: false, error: 'too_many' });
  });
});
