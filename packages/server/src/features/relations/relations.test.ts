import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import type { ModelView } from '../models/models.service.js';
import { shieldedBody, XLSX_MIME } from './relations.routes.js';
import type { ImportError, ImportReport } from './relations.service.js';

const SYS: Principal = { kind: 'system', name: 'test' };
const ZH = ['*设备DeviceKey', '*产品ProductKey', '设备SN', '设备名称', '证书指纹'];
const EN = ['*DeviceKey', '*ProductKey', 'Device SN', 'Device Name', 'Certificate Fingerprint'];
const FP = 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3';

/** A csv the way a person or Excel writes it: quotes only where needed. */
function csv(header: string[], rows: string[][], opts: { eol?: string; bom?: boolean } = {}): Buffer {
  const eol = opts.eol ?? '\n';
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const text = [header, ...rows].map((r) => r.map(cell).join(',')).join(eol) + eol;
  return Buffer.from((opts.bom ? '\uFEFF' : '') + text, 'utf8');
}

const imei = (n: number) => String(860_000_000_000_000 + n);

describe.each(storageBackends())('relation import on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let otherVendorId: string;
  let vendorKey: string;
  let otherKey: string;
  let cell: ModelView;
  let wifi: ModelView;
  let foreign: ModelView;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    vendorId = (await h.services.vendors.create(SYS, { name: 'Acme' })).id;
    otherVendorId = (await h.services.vendors.create(SYS, { name: 'Other' })).id;
    vendorKey = (await h.services.accounts.createVendorKey(SYS, vendorId, 'factory')).token;
    otherKey = (await h.services.accounts.createVendorKey(SYS, otherVendorId, 'other')).token;
    cell = (await h.services.models.create(SYS, vendorId, { name: 'Cellular till', product_key: 'pkCell' })).model;
    wifi = (await h.services.models.create(SYS, vendorId, { name: 'Wi-Fi till', product_key: 'pkWifi' })).model;
    foreign = (await h.services.models.create(SYS, otherVendorId, { name: 'Theirs', product_key: 'pkForeign' })).model;
  });
  afterAll(async () => {
    await h?.close();
  });

  async function register(model: ModelView, sns: string[]): Promise<void> {
    const now = h.clock.now();
    await h.services.devices.repo.insertMany(sns.map((sn) => h.services.devices.newDeviceRow(model, sn, now)));
  }

  const upload = (body: Buffer, query = '', contentType = 'text/csv', token = vendorKey, vendor = vendorId) =>
    h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendor}/relations/import${query}`,
      headers: { ...bearer(token), 'content-type': contentType },
      payload: body,
    });

  async function device(sn: string) {
    return h.deps.db.kysely.selectFrom('devices').selectAll().where('sn_key', '=', sn.toLowerCase()).executeTakeFirstOrThrow();
  }

  async function pairedCount(prefix: string): Promise<number> {
    const r = await h.deps.db.kysely
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sn_key', 'like', `${prefix.toLowerCase()}%`)
      .where('device_key_norm', 'is not', null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async function importCount(): Promise<number> {
    const r = await h.deps.db.kysely
      .selectFrom('relation_imports')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  const tenThousand = (prefix: string) =>
    Array.from({ length: 10_000 }, (_, i) => {
      const sn = `${prefix}${String(i).padStart(5, '0')}`;
      return [imei(100_000 + i), 'pkCell', sn, `Till ${i}`, ''];
    });

  it.skipIf(skip)('one bad row among 10 000 writes nothing and names that row’s line', async () => {
    const rows = tenThousand('BIG');
    await register(
      cell,
      rows.map((r) => r[2]!),
    );
    rows[5000]![0] = 'not an imei!';
    const before = await importCount();
    const r = await upload(csv(ZH, rows), '?filename=line-7.csv');
    expect(r.statusCode).toBe(422);
    const body = r.json();
    expect(body.error.code).toBe('IMPORT_REJECTED');
    const report = body.error.details as ImportReport;
    expect(report).toMatchObject({ rows: 10_000, imported: false, error_count: 1 });
    expect(report.errors).toEqual([
      { line: 5002, column: '*设备DeviceKey', value: 'not an imei!', message: expect.stringMatching(/DeviceKey must be/) },
    ]);
    expect(await pairedCount('BIG')).toBe(0);
    // The attempt is in the history, with its error.
    expect(await importCount()).toBe(before + 1);
  });

  it.skipIf(skip)('a clean 10 000-row file pairs every device in one go', async () => {
    const rows = tenThousand('BIG');
    const r = await upload(csv(ZH, rows), '?filename=line-7.csv');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ dry_run: false, imported: true, rows: 10_000, paired: 10_000, updated: 0, unchanged: 0 });
    expect(r.json().import_id).toMatch(/^imp_/);
    expect(await pairedCount('BIG')).toBe(10_000);
    const d = await device('BIG09999');
    expect(d).toMatchObject({ device_key: imei(109_999), device_key_norm: imei(109_999), device_name: 'Till 9999' });
    expect(d.paired_at).toBe(h.clock.now());
  });

  it.skipIf(skip)('importing the same file again changes nothing', async () => {
    const pairedAt = (await device('BIG00001')).paired_at;
    h.clock.advance(60_000);
    const r = await upload(csv(ZH, tenThousand('BIG')));
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ imported: true, rows: 10_000, paired: 0, updated: 0, unchanged: 10_000 });
    expect((await device('BIG00001')).paired_at).toBe(pairedAt);
  });

  it.skipIf(skip)('finds a device by its IMEI in the device list', async () => {
    const r = await h.app.inject({
      method: 'GET',
      url: `/api/v1/vendors/${vendorId}/devices?q=${imei(104_321)}`,
      headers: bearer(vendorKey),
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().devices.map((d: { sn: string; device_key: string }) => [d.sn, d.device_key])).toEqual([
      ['BIG04321', imei(104_321)],
    ]);
  });

  it.skipIf(skip)('checks every rule and names each bad row’s line', async () => {
    await register(
      cell,
      Array.from({ length: 13 }, (_, i) => `V${String(i + 1).padStart(4, '0')}`),
    );
    await register(wifi, ['W0001']);
    await register(foreign, ['F0001']);
    // Already paired in the store: V0010 ↔ 862000000000010 (this vendor), F0001 ↔ 863000000000001 (another vendor).
    const pre = await h.services.relations.importFile(
      SYS,
      vendorId,
      Readable.from([csv(EN, [['862000000000010', 'pkCell', 'V0010']])]),
      {
        format: 'csv',
      },
    );
    expect(pre).toMatchObject({ imported: true, paired: 1 });
    const preOther = await h.services.relations.importFile(
      SYS,
      otherVendorId,
      Readable.from([csv(EN, [['863000000000001', 'pkForeign', 'F0001']])]),
      { format: 'csv' },
    );
    expect(preOther).toMatchObject({ imported: true, paired: 1 });

    const header = [...ZH, '刷脸应用软件模式代码', '刷脸应用操作系统', ''];
    const row = (
      dk: string,
      pk: string,
      sn: string,
      more: Partial<Record<'name' | 'fp' | 'scene' | 'os' | 'extra', string>> = {},
    ) => [dk, pk, sn, more.name ?? '', more.fp ?? '', more.scene ?? '', more.os ?? '', more.extra ?? ''];
    const rows = [
      /* 2 */ row('861000000000001', 'pkCell', 'V0001'),
      /* 3 */ row('', 'pkCell', 'ROW3'),
      /* 4 */ row('bad key!', 'pkCell', 'ROW4'),
      /* 5 */ row('8.61E+14', 'pkCell', 'ROW5'),
      /* 6 */ row('861000000000006', '', 'ROW6'),
      /* 7 */ row('861000000000007', 'pkForeign', 'ROW7'),
      /* 8 */ row('861000000000008', 'pkCell', 'bad-sn'),
      /* 9 */ row('861000000000009', 'pkCell', 'NOPE0001'),
      /* 10 */ row('861000000000010', 'pkCell', 'W0001'),
      /* 11 */ row('861000000000011', 'pkCell', 'F0001'),
      /* 12 */ row('861000000000001', 'pkCell', 'V0002'),
      /* 13 */ row('AA-BB-CC-00-00-01', 'pkCell', 'V0003'),
      /* 14 */ row('aabbcc000001', 'pkCell', 'V0004'),
      /* 15 */ row('861000000000015', 'pkCell', 'v0001'),
      /* 16 */ row('862000000000010', 'pkCell', 'V0005'),
      /* 17 */ row('861000000000017', 'pkCell', 'V0010'),
      /* 18 */ row('861000000000018', 'pkCell', 'V0006', { fp: 'xyz' }),
      /* 19 */ row('861000000000019', 'pkCell', 'V0007', { name: 'n'.repeat(129) }),
      /* 20 */ row('861000000000020', 'pkCell', 'V0008', { scene: '9' }),
      /* 21 */ row('861000000000021', 'pkCell', 'V0009', { os: 'BEOS' }),
      /* 22 */ row('861000000000022', 'pkCell', ''),
      /* 23 */ row('861000000000023', 'pkCell', 'V0011', { extra: 'stray' }),
      /* 24 */ row('863000000000001', 'pkCell', 'V0012'),
      /* 25 */ row('861000000000025', 'pkCell', 'V0013', {
        fp: FP.toUpperCase().match(/../g)!.join(':'),
        scene: '2',
        os: 'android',
      }),
    ];
    const r = await upload(csv(header, rows));
    expect(r.statusCode).toBe(422);
    const report = r.json().error.details as ImportReport;
    const got = report.errors.map((e: ImportError) => [e.line, e.column, e.message]);
    expect(got).toEqual([
      [3, '*设备DeviceKey', 'DeviceKey is required'],
      [4, '*设备DeviceKey', expect.stringMatching(/^DeviceKey must be 1–64 characters/)],
      [5, '*设备DeviceKey', expect.stringMatching(/scientific notation/)],
      [6, '*产品ProductKey', 'ProductKey is required'],
      [7, '*产品ProductKey', 'Unknown ProductKey pkForeign: it is not a model of this vendor'],
      [8, '设备SN', expect.stringMatching(/^The SN must be 1–128 characters/)],
      [9, '设备SN', 'SN NOPE0001 is not registered'],
      [10, '设备SN', 'SN W0001 belongs to ProductKey pkWifi, not pkCell'],
      [11, '设备SN', 'SN F0001 is not registered'],
      [12, '*设备DeviceKey', 'DeviceKey 861000000000001 is already on line 2 of this file'],
      [14, '*设备DeviceKey', 'DeviceKey aabbcc000001 is already on line 13 of this file'],
      [15, '设备SN', 'SN v0001 is already on line 2 of this file (SNs ignore case)'],
      [16, '*设备DeviceKey', 'DeviceKey 862000000000010 is already paired with SN V0010'],
      [17, '设备SN', 'SN V0010 is already paired with DeviceKey 862000000000010'],
      [18, '证书指纹', expect.stringMatching(/^The certificate fingerprint must be a SHA-1/)],
      [19, '设备名称', 'The device name must be at most 128 characters'],
      [20, '刷脸应用软件模式代码', expect.stringMatching(/^The app scene code must be one of 1, 2, 3, 4/)],
      [21, '刷脸应用操作系统', 'The operating system must be one of ANDROID, LINUX, WINDOWS'],
      [22, '设备SN', 'The SN is required: DeviceKey 861000000000022 is not yet paired with a device of ProductKey pkCell'],
      [23, undefined, 'Column 8 has a value but no header; name the column or clear it'],
      [24, '*设备DeviceKey', 'DeviceKey 863000000000001 is already paired with another device'],
    ]);
    expect(report.error_count).toBe(21);
    // Good rows (2, 13, 25) were not written either.
    expect(await pairedCount('V')).toBe(1);
    expect((await device('V0001')).device_key).toBeNull();

    // Without the bad rows the same file goes in, and the fingerprint and attributes are normalised.
    const good = await upload(csv(header, [rows[0]!, rows[11]!, rows[23]!]));
    expect(good.statusCode).toBe(200);
    expect(good.json()).toMatchObject({ paired: 3 });
    expect(await device('V0013')).toMatchObject({
      device_key: '861000000000025',
      cert_fingerprint: FP,
      app_scene_code: '2',
      operating_system: 'ANDROID',
    });
    expect(await device('V0003')).toMatchObject({ device_key: 'AA-BB-CC-00-00-01', device_key_norm: 'aabbcc000001' });
  });

  it.skipIf(skip)('rejects a header it cannot read, at line 1', async () => {
    const cases: Array<[Buffer, Partial<ImportError>]> = [
      [
        csv(['*DeviceKey', 'Device SN'], [['1', 'V0001']]),
        { line: 1, message: expect.stringMatching(/产品ProductKey \(\*ProductKey\) is missing/) },
      ],
      [
        csv([...EN, '备注'], [['1', 'pkCell', 'V0001', '', '', 'x']]),
        { line: 1, column: '备注', message: expect.stringMatching(/^Unknown column/) },
      ],
      [
        csv(['*DeviceKey', '*ProductKey', 'DK'], [['1', 'pkCell', '2']]),
        { line: 1, column: 'DK', message: 'Column DK appears twice (also column 1)' },
      ],
      [Buffer.from(''), { line: 1, message: expect.stringMatching(/file is empty/) }],
      [csv(ZH, []), { line: 2, message: 'The file has a header but no rows' }],
    ];
    for (const [file, expected] of cases) {
      const r = await upload(file);
      expect(r.statusCode).toBe(422);
      expect(r.json().error.details.errors).toEqual([expect.objectContaining(expected)]);
    }
  });

  it.skipIf(skip)('reads files saved by Excel: BOM, CRLF, quoted cells, leading blank lines', async () => {
    await register(cell, ['XL01', 'XL02', 'XL03']);
    const rows = [
      [imei(201), 'pkCell', 'XL01', 'Till "A", 2F', ''],
      [imei(202), 'pkCell', 'XL02', 'two\r\nlines', ''],
      ['bad!', 'pkCell', 'XL03', '', ''],
    ];
    const file = Buffer.concat([Buffer.from('\r\n\r\n'), csv(ZH, rows, { eol: '\r\n', bom: false })]);
    const bad = await upload(Buffer.concat([Buffer.from('\uFEFF'), file]));
    expect(bad.statusCode).toBe(422);
    // Header on line 3; XL02's name spans lines 5–6, so the bad row is line 7.
    expect(bad.json().error.details.errors.map((e: ImportError) => e.line)).toEqual([5, 7]);

    rows[1]![3] = 'Till B';
    rows[2]![0] = imei(203);
    const ok = await upload(csv(ZH, rows, { eol: '\r\n', bom: true }));
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ rows: 3, paired: 3 });
    expect((await device('XL01')).device_name).toBe('Till "A", 2F');
  });

  it.skipIf(skip)('imports xlsx, numbers by sheet row, and refuses numbers Excel rounded', async () => {
    await register(cell, ['XS01', 'XS02', '123456789012345678']);
    const wb = new ExcelJS.Workbook();
    const ws = wb.addWorksheet('Sheet1');
    ws.addRow(EN);
    ws.addRow([Number(imei(301)), 'pkCell', 'XS01', 'Till X1']);
    ws.getRow(4).values = [imei(302), 'pkCell', 'XS02'];
    ws.getRow(5).values = [imei(303), 'pkCell', Number('123456789012345678')];
    const bad = await upload(Buffer.from(await wb.xlsx.writeBuffer()), '?filename=line.xlsx', XLSX_MIME);
    expect(bad.statusCode).toBe(422);
    expect(bad.json().error.details.errors).toEqual([
      expect.objectContaining({ line: 5, column: 'Device SN', message: expect.stringMatching(/format the column as Text/) }),
    ]);

    ws.getRow(5).values = [imei(303), 'pkCell', '123456789012345678'];
    const r = await upload(Buffer.from(await wb.xlsx.writeBuffer()), '?filename=line.xlsx', 'application/octet-stream');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ rows: 3, paired: 3 });
    expect(await device('XS01')).toMatchObject({ device_key: imei(301), device_name: 'Till X1' });
    expect((await device('123456789012345678')).device_key).toBe(imei(303));
  });

  it.skipIf(skip)('needs to know the format of an octet-stream upload', async () => {
    const r = await upload(csv(EN, [[imei(1), 'pkCell', 'V0001']]), '', 'application/octet-stream');
    expect(r.statusCode).toBe(400);
    expect(r.json().error.code).toBe('VALIDATION_FAILED');
    const wrong = await upload(Buffer.from('{"a":1}'), '', 'application/json');
    expect(wrong.statusCode).toBe(400);
  });

  it.skipIf(skip)('accepts English headers in any order, any case, with or without *', async () => {
    await register(cell, ['EN01', 'EN02']);
    const file = csv(
      [' device sn ', 'PRODUCTKEY', 'devicekey', 'Certificate Fingerprint'],
      [
        ['EN01', 'pkCell', imei(401), FP],
        ['EN02', 'pkCell', imei(402), ''],
      ],
    );
    const r = await upload(file);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ paired: 2 });
    expect(await device('EN01')).toMatchObject({ device_key: imei(401), cert_fingerprint: FP });
  });

  it.skipIf(skip)('a dry run reports what would change and writes nothing', async () => {
    await register(
      cell,
      Array.from({ length: 50 }, (_, i) => `DRY${i}`),
    );
    const rows = Array.from({ length: 50 }, (_, i) => [imei(500 + i), 'pkCell', `DRY${i}`, '', '']);
    const before = await importCount();
    const r = await upload(csv(ZH, rows), '?dry_run=true');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      dry_run: true,
      imported: false,
      import_id: null,
      rows: 50,
      paired: 50,
      updated: 0,
      unchanged: 0,
      error_count: 0,
      errors: [],
    });
    expect(await pairedCount('DRY')).toBe(0);
    rows[3]![0] = '';
    const withError = await upload(csv(ZH, rows), '?dry_run=true');
    expect(withError.statusCode).toBe(422);
    expect(withError.json().error.details).toMatchObject({ dry_run: true, error_count: 1, paired: 49 });
    expect(await importCount()).toBe(before);
  });

  it.skipIf(skip)('updates a paired device by DeviceKey alone; empty cells keep what is stored', async () => {
    await register(cell, ['UPD1', 'UPD2']);
    const first = await upload(
      csv(EN, [
        [imei(601), 'pkCell', 'UPD1', 'Old name', FP],
        [imei(602), 'pkCell', 'UPD2', 'Keep me', ''],
      ]),
    );
    expect(first.json()).toMatchObject({ paired: 2 });
    const byKey = await upload(
      csv(
        ['*DeviceKey', '*ProductKey', 'Device Name'],
        [
          [imei(601), 'pkCell', 'New name'],
          [imei(602), 'pkCell', ''],
        ],
      ),
    );
    expect(byKey.statusCode).toBe(200);
    expect(byKey.json()).toMatchObject({ paired: 0, updated: 1, unchanged: 1 });
    expect(await device('UPD1')).toMatchObject({ device_name: 'New name', cert_fingerprint: FP });
    expect((await device('UPD2')).device_name).toBe('Keep me');
  });

  it.skipIf(skip)('the downloaded templates round-trip: fill them in, upload them', async () => {
    await register(cell, ['TPL1', 'TPL2']);
    const t = await h.app.inject({ method: 'GET', url: '/api/v1/relations/template.csv?lang=zh' });
    expect(t.statusCode).toBe(200);
    expect(t.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(t.rawPayload.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(t.rawPayload.toString('utf8')).toBe(`\uFEFF${ZH.join(',')}\r\n`);
    const filled = Buffer.concat([t.rawPayload, Buffer.from(`${imei(701)},pkCell,TPL1,收银机一号,\r\n`)]);
    const r = await upload(filled);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ paired: 1 });
    expect((await device('TPL1')).device_name).toBe('收银机一号');

    const x = await h.app.inject({ method: 'GET', url: '/api/v1/relations/template.xlsx?lang=en' });
    expect(x.statusCode).toBe(200);
    expect(x.headers['content-type']).toBe(XLSX_MIME);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(x.rawPayload as unknown as ArrayBuffer);
    const sheet = wb.worksheets[0]!;
    expect((sheet.getRow(1).values as unknown[]).slice(1)).toEqual(EN);
    expect(sheet.getColumn(1).numFmt).toBe('@');
    expect(wb.worksheets[1]!.name).toBe('Notes');
    sheet.addRow([imei(702), 'pkCell', 'TPL2', 'Till T2']);
    const rx = await upload(Buffer.from(await wb.xlsx.writeBuffer()), '?filename=filled.xlsx', XLSX_MIME);
    expect(rx.statusCode).toBe(200);
    expect(rx.json()).toMatchObject({ rows: 1, paired: 1 });
    expect((await device('TPL2')).device_key).toBe(imei(702));

    const en = await h.services.relations.template('csv', 'en');
    expect(en.toString('utf8')).toBe(`\uFEFF${EN.join(',')}\r\n`);
  });

  it.skipIf(skip)('reports progress while reading', async () => {
    await register(
      cell,
      Array.from({ length: 2500 }, (_, i) => `PRG${i}`),
    );
    const seen: number[] = [];
    const rows = Array.from({ length: 2500 }, (_, i) => [imei(10_000 + i), 'pkCell', `PRG${i}`]);
    const report = await h.services.relations.importFile(SYS, vendorId, Readable.from([csv(EN.slice(0, 3), rows)]), {
      format: 'csv',
      onProgress: (n) => seen.push(n),
    });
    expect(report).toMatchObject({ imported: true, paired: 2500 });
    expect(seen).toEqual([1000, 2000, 2500]);
  });

  it.skipIf(skip)('an upload that breaks off writes nothing and leaves no history', async () => {
    await register(cell, ['CUT1']);
    const before = await importCount();
    const broken = new Readable({
      read() {
        this.push(csv(EN.slice(0, 3), [[imei(801), 'pkCell', 'CUT1']]));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(h.services.relations.importFile(SYS, vendorId, broken, { format: 'csv' })).rejects.toThrow('connection reset');
    expect((await device('CUT1')).device_key).toBeNull();
    expect(await importCount()).toBe(before);
  });

  it.skipIf(skip)('refuses an upload over the size limit, and writes nothing', async () => {
    await register(cell, ['BIGF1']);
    const file = csv(EN.slice(0, 3), [[imei(851), 'pkCell', 'BIGF1']]);
    const body = shieldedBody(Readable.from([file.subarray(0, 20), file.subarray(20)]), 30);
    await expect(h.services.relations.importFile(SYS, vendorId, body, { format: 'csv' })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect((await device('BIGF1')).device_key).toBeNull();
  });

  it.skipIf(skip)('over real HTTP, a file rejected early still gets its 422 and the server goes on', async () => {
    await register(cell, ['NET1']);
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const post = (body: Buffer) =>
      fetch(`${address}/api/v1/vendors/${vendorId}/relations/import`, {
        method: 'POST',
        headers: { ...bearer(vendorKey), 'content-type': 'text/csv' },
        body: new Uint8Array(body),
      });
    const many = Array.from({ length: 50_000 }, (_, i) => [imei(300_000 + i), 'pkCell', `NOPE${i}`]);
    // A bad header stops reading at line 1, long before the 2 MB body has arrived.
    const badHeader = await post(csv(['*DeviceKey', 'Mystery'], many));
    expect(badHeader.status).toBe(422);
    expect((await badHeader.json()).error.details.errors[0]).toMatchObject({ line: 1, column: 'Mystery' });
    // A quote opened on line 3 and never closed: the reader says so, at line 3.
    const broken = Buffer.concat([
      Buffer.from(`*DeviceKey,*ProductKey,Device SN\n${imei(1)},pkCell,NET1\n"${imei(2)},pkCell,NOPE\n`),
      csv([], many),
    ]);
    const brokenRes = await post(broken);
    expect(brokenRes.status).toBe(422);
    expect((await brokenRes.json()).error.details.errors).toEqual([
      expect.objectContaining({ line: 3, message: expect.stringMatching(/csv cannot be read/) }),
    ]);
    const ok = await post(csv(EN.slice(0, 3), [[imei(861), 'pkCell', 'NET1']]));
    expect(ok.status).toBe(200);
    expect((await device('NET1')).device_key).toBe(imei(861));
  });

  it.skipIf(skip)('never overwrites a pairing made by someone else after validation', async () => {
    await register(cell, ['RACE1']);
    const d = await device('RACE1');
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ device_key: 'other', device_key_norm: 'other', paired_at: 1 })
      .where('id', '=', d.id)
      .execute();
    const changed = await h.services.relations.repo.applyPairings([
      {
        id: d.id,
        device_key: imei(901),
        device_key_norm: imei(901),
        device_name: null,
        cert_fingerprint: null,
        camera_sn: null,
        app_scene_code: null,
        operating_system: null,
        paired_at: 2,
      },
    ]);
    expect(changed).toBe(0);
    expect((await device('RACE1')).device_key).toBe('other');
  });

  it.skipIf(skip)('lets a model token import rows of its own model only', async () => {
    await register(wifi, ['MT1']);
    await register(cell, ['MT2']);
    const asWifi: Principal = { kind: 'model', modelId: wifi.model_id, vendorId };
    const file = (pk: string, sn: string) => Readable.from([csv(EN.slice(0, 3), [[imei(880 + sn.length), pk, sn]])]);
    expect(await h.services.relations.importFile(asWifi, vendorId, file('pkWifi', 'MT1'), { format: 'csv' })).toMatchObject({
      imported: true,
      paired: 1,
    });
    const other = await h.services.relations.importFile(asWifi, vendorId, file('pkCell', 'MT22'), { format: 'csv' });
    expect(other.errors).toEqual([
      expect.objectContaining({ line: 2, message: expect.stringMatching(/^Unknown ProductKey pkCell/) }),
    ]);
  });

  it.skipIf(skip)('describes its routes in the OpenAPI reference', async () => {
    const spec = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const imp = spec.paths['/api/v1/vendors/{vendorId}/relations/import'].post;
    expect(imp.tags).toEqual(['relations']);
    expect(Object.keys(imp.requestBody.content)).toEqual(expect.arrayContaining(['text/csv', XLSX_MIME]));
    expect(spec.paths['/api/v1/relations/template.xlsx'].get.summary).toMatch(/template/);
    expect(spec.paths['/api/v1/vendors/{vendorId}/relations/imports'].get.summary).toMatch(/imports/);
  });

  it.skipIf(skip)('acts only for the caller’s vendor', async () => {
    const file = csv(EN.slice(0, 3), [[imei(999), 'pkCell', 'V0001']]);
    const r = await upload(file, '', 'text/csv', otherKey, vendorId);
    expect(r.statusCode).toBe(403);
    const list = await h.app.inject({
      method: 'GET',
      url: `/api/v1/vendors/${vendorId}/relations/imports`,
      headers: bearer(otherKey),
    });
    expect(list.statusCode).toBe(403);
    const none = await upload(file, '', 'text/csv', h.operatorToken, 'ven_missing');
    expect(none.statusCode).toBe(404);
    expect(none.json().error.code).toBe('VENDOR_NOT_FOUND');
    const anon = await h.app.inject({ method: 'POST', url: `/api/v1/vendors/${vendorId}/relations/import`, payload: file });
    expect(anon.statusCode).toBe(401);
  });

  it.skipIf(skip)('keeps a history of imports per vendor: who, when, file, rows, result; and audits them', async () => {
    const first = await h.app.inject({
      method: 'GET',
      url: `/api/v1/vendors/${vendorId}/relations/imports?limit=2`,
      headers: bearer(vendorKey),
    });
    expect(first.statusCode).toBe(200);
    const page = first.json();
    expect(page.imports).toHaveLength(2);
    expect(page.next_cursor).toEqual(expect.any(String));
    const all: Array<{
      id: string;
      result: string;
      file_name: string | null;
      rows: number;
      actor: string;
      actor_name: string | null;
      errors: ImportError[];
    }> = [];
    let cursor: string | null = null;
    do {
      const res: { json(): { imports: typeof all; next_cursor: string | null } } = await h.app.inject({
        method: 'GET',
        url: `/api/v1/vendors/${vendorId}/relations/imports?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        headers: bearer(vendorKey),
      });
      all.push(...res.json().imports);
      cursor = res.json().next_cursor;
    } while (cursor);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    const big = all.filter((e) => e.file_name === 'line-7.csv');
    expect(big.map((e) => e.result).sort()).toEqual(['imported', 'rejected']);
    const rejected = big.find((e) => e.result === 'rejected')!;
    // A key has no name to show; a person is shown by theirs.
    expect(rejected).toMatchObject({ rows: 10_000, actor: expect.stringMatching(/^vendor_key:/), actor_name: null });
    for (const e of all.filter((x) => x.actor.startsWith('user:'))) expect(e.actor_name).toEqual(expect.any(String));
    expect(rejected.errors[0]).toMatchObject({ line: 5002 });
    const audits = await h.deps.db.kysely
      .selectFrom('audit_log')
      .select(['action'])
      .where('subject', '=', `vendor:${vendorId}`)
      .where('action', 'like', 'relations.%')
      .execute();
    expect(audits.filter((a) => a.action === 'relations.import').length).toBe(all.filter((e) => e.result === 'imported').length);
    expect(audits.filter((a) => a.action === 'relations.import_rejected').length).toBe(
      all.filter((e) => e.result === 'rejected').length,
    );
  });
});
