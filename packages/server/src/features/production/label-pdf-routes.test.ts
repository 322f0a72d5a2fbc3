import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Principal, SYSTEM_CLI, type VendorRole } from '../../shared/principal.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { A4_GRID } from './label-pdf.js';

type JsQr = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as JsQr;

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const poppler = hasTool('pdftoppm') && hasTool('pdftotext') && hasTool('pdfinfo');
if (!poppler) console.warn('[bindery tests] label PDF download checks skipped: install poppler-utils (pdftoppm)');

const COUNT = 40;
const mmPx = (mm: number, dpi: number) => Math.round((mm / 25.4) * dpi);

/**
 * Issue 13 item 4: a batch's labels-a4.pdf and labels-roll.pdf on their own, rendered as the zip
 * renders them, for the vendor's admins and production (as the zip); engineers and strangers refused.
 */
describe.each(storageBackends())('label PDF downloads on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let work: string;
  let batchId: string;
  let modelId: string;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    work = mkdtempSync(path.join(tmpdir(), 'bindery-pdf-routes-'));
    const s = h.services;
    const vendor = await s.vendors.create(SYSTEM_CLI, { name: 'Pdf Vendor' });
    const other = await s.vendors.create(SYSTEM_CLI, { name: 'Pdf Other' });
    modelId = (await s.models.create(SYSTEM_CLI, vendor.id, { name: 'Door Sensor D2', product_key: 'pkPdf' })).model.model_id;
    const person = async (name: string, vendorId: string, role: VendorRole) => {
      const u = await s.accounts.createUser(SYSTEM_CLI, { username: `${name}.pdf`, password: 'a long password here' });
      const me: Principal = { kind: 'user', userId: u.id, isOperator: false };
      await s.vendorPeople.acceptInvite((await s.vendorPeople.createInvite(SYSTEM_CLI, vendorId, { role })).token, me);
      tokens[name] = (await s.people.createToken(me, 't')).token;
    };
    await person('admin', vendor.id, 'vendor_admin');
    await person('production', vendor.id, 'production');
    await person('engineer', vendor.id, 'engineer');
    await person('otherAdmin', other.id, 'vendor_admin');
    batchId = (
      await s.production.createBatch(SYSTEM_CLI, modelId, {
        count: COUNT,
        pattern: { kind: 'counter', prefix: 'PDF', width: 6, checkChar: true },
      })
    ).id;
  });
  afterAll(async () => {
    await h?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const get = (url: string, token?: string) => h.app.inject({ method: 'GET', url, headers: token ? bearer(token) : {} });
  const text = (file: string) => execFileSync('pdftotext', ['-layout', file, '-']).toString('utf8');

  it.skipIf(skip || !poppler)('streams each PDF as the zip holds it, for admins and production, audited', async () => {
    const zipRes = await get(`/api/v1/batches/${batchId}/download?include=pdf,manifest`, tokens.admin);
    expect(zipRes.statusCode).toBe(200);
    const zip = unzipSync(zipRes.rawPayload);
    const manifest = Buffer.from(zip['manifest.csv']!).toString('utf8').trim().split('\r\n');
    const firstContent = manifest[1]!.split(',')[3]!;

    for (const [layout, pages, who] of [
      ['a4', Math.ceil(COUNT / 32), 'admin'],
      ['roll', COUNT, 'production'],
    ] as const) {
      const r = await get(`/api/v1/batches/${batchId}/labels-${layout}.pdf`, tokens[who]);
      expect(r.statusCode, layout).toBe(200);
      expect(r.headers['content-type']).toBe('application/pdf');
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['content-disposition']).toMatch(
        new RegExp(`attachment; filename="labels-${layout}_${batchId}_\\d{14}\\.pdf"`),
      );
      expect(r.rawPayload.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      const file = path.join(work, `${layout}.pdf`);
      writeFileSync(file, r.rawPayload);
      const fromZip = path.join(work, `zip-${layout}.pdf`);
      writeFileSync(fromZip, zip[`labels-${layout}.pdf`]!);
      expect(execFileSync('pdfinfo', [file]).toString('utf8')).toMatch(new RegExp(`^Pages:\\s+${pages}$`, 'm'));
      // Rendered the way the zip renders it: the same text on the same pages.
      expect(text(file)).toBe(text(fromZip));
      expect(text(file)).toContain(manifest[1]!.split(',')[0]!);
    }

    // The A4 sheet parses and its first label scans to the manifest's content.
    const a4 = path.join(work, 'a4.pdf');
    execFileSync('pdftoppm', ['-png', '-r', '300', '-f', '1', '-l', '1', '-singlefile', a4, path.join(work, 'a4-300')]);
    const page = PNG.sync.read(readFileSync(path.join(work, 'a4-300.png')));
    const g = A4_GRID;
    const [x, y] = [mmPx(g.marginX, 300), mmPx(g.marginTop, 300)];
    const [w, hgt] = [
      mmPx((g.pageW - 2 * g.marginX) / g.cols, 300),
      mmPx((g.pageH - g.marginTop - g.marginBottom) / g.rows, 300),
    ];
    const cell = new Uint8ClampedArray(w * hgt * 4);
    for (let row = 0; row < hgt; row++) {
      const from = ((y + row) * page.width + x) * 4;
      cell.set(page.data.subarray(from, from + w * 4), row * w * 4);
    }
    expect(jsQR(cell, w, hgt)?.data).toBe(firstContent);

    // Recorded as downloads of those files (once each response finished).
    await expect
      .poll(async () =>
        (
          await h.deps.db.kysely
            .selectFrom('audit_log')
            .select('data')
            .where('action', '=', 'batch.download')
            .where('subject', '=', `batch:${batchId}`)
            .execute()
        ).map((a) => (JSON.parse(a.data ?? '{}') as { parts: string[] }).parts.join()),
      )
      .toEqual(expect.arrayContaining(['labels-a4.pdf', 'labels-roll.pdf']));
  });

  it.skipIf(skip)('refuses engineers, another vendor, nobody, and batches that are not there', async () => {
    for (const layout of ['a4', 'roll']) {
      const url = `/api/v1/batches/${batchId}/labels-${layout}.pdf`;
      for (const who of ['engineer', 'otherAdmin']) {
        const r = await get(url, tokens[who]);
        expect(r.statusCode, `${who} ${layout}`).toBeGreaterThanOrEqual(403);
        expect(r.statusCode).toBeLessThanOrEqual(404);
        expect(r.headers['content-type']).toMatch(/^application\/json/);
      }
      expect((await get(url)).statusCode).toBe(401);
      const missing = await get(`/api/v1/batches/bat_nowhere/labels-${layout}.pdf`, tokens.admin);
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['content-type']).toMatch(/^application\/json/);
    }
  });
});
