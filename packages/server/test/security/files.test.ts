import { Readable } from 'node:stream';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelView } from '../../src/features/models/models.service.js';
import { IMPORT_LIMITS } from '../../src/features/relations/relations.limits.js';
import { csvField } from '../../src/shared/csv.js';
import type { Principal } from '../../src/shared/principal.js';
import { storageBackends } from '../../src/testing/backends.js';
import { bearer, type Harness, startHarness } from '../../src/testing/harness.js';

/**
 * Issue 11, finding 7 (untrusted files): an upload cannot take the server's memory or CPU (a zip
 * bomb, millions of blank rows), and a cell that a spreadsheet would run as a formula reaches
 * every csv Bindery hands out as text.
 */
const SYS: Principal = { kind: 'system', name: 'test' };
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const MiB = 2 ** 20;

/** Raw deflate of `data` as non-final, byte-aligned blocks that reference nothing before them. */
const block = (data: string | Buffer) => deflateRawSync(data, { finishFlush: constants.Z_FULL_FLUSH });
/** The empty final block that ends a raw deflate stream. */
const FINAL = Buffer.from([0x03, 0x00]);

interface Entry {
  name: string;
  deflated: Buffer;
  size: number;
}

/**
 * A zip written by hand, so a test can make one that unpacks to far more than it weighs: with the
 * sizes in the local headers (`declared`) or hidden behind data descriptors, as a streaming zip
 * writer leaves them. CRCs are left 0: nothing may read far enough to check one.
 */
function zipOf(entries: Entry[], declared: boolean): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const flags = declared ? 0 : 0x08;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(0, 14);
    local.writeUInt32LE(declared ? e.deflated.length : 0, 18);
    local.writeUInt32LE(declared ? e.size : 0, 22);
    local.writeUInt16LE(name.length, 26);
    const desc = Buffer.alloc(declared ? 0 : 16);
    if (!declared) {
      desc.writeUInt32LE(0x08074b50, 0);
      desc.writeUInt32LE(e.deflated.length, 8);
      desc.writeUInt32LE(e.size, 12);
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(e.deflated.length, 20);
    cd.writeUInt32LE(e.size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    parts.push(local, name, e.deflated, desc);
    offset += local.length + name.length + e.deflated.length + desc.length;
  }
  const cdSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

const small = (name: string, text: string): Entry => ({ name, deflated: deflateRawSync(text), size: Buffer.byteLength(text) });

/**
 * An xlsx whose first sheet is a header row and then `blankMiB` MiB of blank rows: `<row r="2"/>`
 * a million times over is a few hundred bytes of deflate, repeated.
 */
function bombXlsx(blankMiB: number, declared: boolean): Buffer {
  const head =
    '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' +
    '<row r="1"><c r="A1" t="inlineStr"><is><t>*DeviceKey</t></is></c><c r="B1" t="inlineStr"><is><t>*ProductKey</t></is></c></row>';
  const tail = '</sheetData></worksheet>';
  const rows = '<row r="2"/>'.repeat(Math.floor(MiB / 12));
  const rowsBlock = block(rows);
  const deflated = Buffer.concat([block(head), ...Array.from({ length: blankMiB }, () => rowsBlock), block(tail), FINAL]);
  const size = head.length + tail.length + rows.length * blankMiB;
  const ns = 'http://schemas.openxmlformats.org';
  return zipOf(
    [
      small(
        '[Content_Types].xml',
        `<?xml version="1.0"?><Types xmlns="${ns}/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`,
      ),
      small(
        '_rels/.rels',
        `<?xml version="1.0"?><Relationships xmlns="${ns}/package/2006/relationships"><Relationship Id="rId1" Type="${ns}/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
      ),
      small(
        'xl/workbook.xml',
        `<?xml version="1.0"?><workbook xmlns="${ns}/spreadsheetml/2006/main" xmlns:r="${ns}/officeDocument/2006/relationships"><sheets><sheet name="Devices" sheetId="1" r:id="rId1"/></sheets></workbook>`,
      ),
      small(
        'xl/_rels/workbook.xml.rels',
        `<?xml version="1.0"?><Relationships xmlns="${ns}/package/2006/relationships"><Relationship Id="rId1" Type="${ns}/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>`,
      ),
      { name: 'xl/worksheets/sheet1.xml', deflated, size: size >= 2 ** 32 ? 2 ** 32 - 1 : size },
    ],
    declared,
  );
}

describe.each(storageBackends())('untrusted files (finding 7) on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorId: string;
  let vendorKey: string;
  let model: ModelView;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    vendorId = (await h.services.vendors.create(SYS, { name: 'Files' })).id;
    vendorKey = (await h.services.accounts.createVendorKey(SYS, vendorId, 'factory')).token;
    model = (await h.services.models.create(SYS, vendorId, { name: 'Till', product_key: 'pkFiles' })).model;
  });
  afterAll(async () => {
    await h?.close();
  });

  const upload = (body: Buffer, contentType: string) =>
    h.app.inject({
      method: 'POST',
      url: `/api/v1/vendors/${vendorId}/relations/import`,
      headers: { ...bearer(vendorKey), 'content-type': contentType },
      payload: body,
    });
  const history = async () =>
    Number(
      (
        await h.deps.db.kysely
          .selectFrom('relation_imports')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('vendor_id', '=', vendorId)
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('the bomb the tests build really is one (its sheet unpacks to what it claims)', () => {
    const zip = bombXlsx(3, true);
    const sheet = zip.indexOf('xl/worksheets/sheet1.xml');
    const size = zip.readUInt32LE(sheet - 30 + 22);
    const comp = zip.readUInt32LE(sheet - 30 + 18);
    const data = zip.subarray(sheet + 'xl/worksheets/sheet1.xml'.length, sheet + 'xl/worksheets/sheet1.xml'.length + comp);
    expect(inflateRawSync(data).length).toBe(size);
    expect(size).toBeGreaterThan(3 * MiB - 64);
  });

  for (const declared of [true, false]) {
    it.skipIf(skip)(
      `finding 7: an xlsx bomb (${declared ? 'sizes declared' : 'sizes hidden in data descriptors'}) is refused with IMPORT_TOO_LARGE, in bounded memory, writing nothing`,
      async () => {
        // 700 MiB of blank rows in well under a megabyte: past every bound (unpacked size and rows).
        const bomb = bombXlsx(700, declared);
        expect(bomb.length).toBeLessThan(2 * MiB);
        const before = await history();
        global.gc?.();
        const rss0 = process.memoryUsage().rss;
        const r = await upload(bomb, XLSX);
        const grown = process.memoryUsage().rss - rss0;
        expect(r.statusCode, r.body).toBe(413);
        expect(r.json().error.code).toBe('IMPORT_TOO_LARGE');
        // The 826 KB file of the finding took the server to 3.9 GB.
        expect(grown).toBeLessThan(400 * MiB);
        expect(await history()).toBe(before);
        const paired = await h.deps.db.kysely
          .selectFrom('devices')
          .select('id')
          .where('vendor_id', '=', vendorId)
          .where('device_key', 'is not', null)
          .execute();
        expect(paired).toHaveLength(0);
      },
    );
  }

  it.skipIf(skip)('finding 7: /healthz is answered while a bomb is being read and refused', async () => {
    const order: string[] = [];
    const importing = upload(bombXlsx(700, false), XLSX).then((r) => {
      order.push('import');
      return r;
    });
    // Let the import start reading; it then runs for seconds, inflating to its bound.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const health = await h.app.inject({ method: 'GET', url: '/healthz' });
    order.push('healthz');
    expect(health.statusCode).toBe(200);
    expect((await importing).json().error.code).toBe('IMPORT_TOO_LARGE');
    // Served during the import, not after it.
    expect(order).toEqual(['healthz', 'import']);
  });

  it.skipIf(skip)(
    'finding 7: a csv of blank lines past the row bound is refused with IMPORT_TOO_LARGE, blank lines counted',
    async () => {
      // The real bound is IMPORT_LIMITS.records; a tenth of it keeps the test short (the count is the same code).
      const limits = { ...IMPORT_LIMITS, records: Math.floor(IMPORT_LIMITS.records / 10) };
      const body = `*DeviceKey,*ProductKey,Device SN\n${'\n'.repeat(limits.records + 10)}`;
      const before = await history();
      const refused = await h.services.relations
        .importFile(SYS, vendorId, Readable.from([Buffer.from(body, 'utf8')]), { format: 'csv', limits })
        .then(
          () => null,
          (e: { code?: string }) => e.code,
        );
      expect(refused).toBe('IMPORT_TOO_LARGE');
      expect(await history()).toBe(before);
    },
  );

  it.skipIf(skip)('finding 7: formula cells of an import come out neutralised in the csv export', async () => {
    const now = h.clock.now();
    const sns = ['FIL0001', 'FIL0002', 'FIL0003', 'FIL0004', 'FIL0005', 'FIL0006'];
    await h.services.devices.repo.insertMany(sns.map((sn) => h.services.devices.newDeviceRow(model, sn, now)));
    const names = ['=HYPERLINK("http://evil.example","click")', '+1+cmd|x', '-2+3', '@SUM(A1)', "=cmd|' /C calc'!A0", '-12'];
    const lines = sns.map((sn, i) => [`86000000000100${i}`, 'pkFiles', sn, names[i]!].map(csvField).join(','));
    // csvField would neutralise too: write the cells raw, as an attacker's file would.
    const raw = sns.map((sn, i) => {
      const v = names[i]!;
      return [`86000000000100${i}`, 'pkFiles', sn, /[",\t]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v].join(',');
    });
    expect(lines[0]).toContain("'=HYPERLINK");
    const imported = await upload(Buffer.from(`*DeviceKey,*ProductKey,Device SN,Device Name\n${raw.join('\n')}\n`), 'text/csv');
    expect(imported.statusCode, imported.body).toBe(200);
    const stored = await h.deps.db.kysely
      .selectFrom('devices')
      .select('device_name')
      .where('sn', '=', 'FIL0001')
      .executeTakeFirst();
    expect(stored?.device_name).toBe(names[0]);

    const exported = await h.app.inject({
      method: 'GET',
      url: `/api/v1/vendors/${vendorId}/relations/export.csv?lang=en`,
      headers: bearer(vendorKey),
    });
    expect(exported.statusCode, exported.body).toBe(200);
    expect(exported.headers['content-type']).toMatch(/^text\/csv/);
    const text = exported.body.replace(/^\uFEFF/, '');
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""click"")"`);
    expect(text).toContain(",'+1+cmd|x,");
    expect(text).toContain(",'-2+3,");
    expect(text).toContain(",'@SUM(A1),");
    expect(text).toContain(",'=cmd|' /C calc'!A0,");
    // A plain negative number is a number, not a formula: left as it is.
    expect(text).toMatch(/,-12,/);
    // No line of the export starts a cell with a formula character.
    for (const line of text.split('\r\n')) for (const cell of line.split(',')) expect(cell).not.toMatch(/^"?[=+@\t\r]/);
  });
});
