import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { hasValidCheckChar } from '@bindery/protocol';
import { parse as parseCsv } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { unzipSync } from 'fflate';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import { SaxesParser } from 'saxes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { neutraliseFormula } from '../../shared/csv.js';
import { storageBackends } from '../../testing/backends.js';
import { bearer, type Harness, startHarness } from '../../testing/harness.js';
import { verifCodeFor } from '../binding/scan.js';
import { A4_GRID, ROLL } from './label-pdf.js';

// jsqr is CommonJS with a `default` export; under NodeNext it arrives as the module object.
type JsQr = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as JsQr;

const BIG = 2000;
const HEAVY = { timeout: 600_000 };

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const poppler = hasTool('pdftoppm') && hasTool('pdftotext') && hasTool('pdfinfo');
const zbar = hasTool('zbarimg');
const rsvg = hasTool('rsvg-convert');
if (!poppler) console.warn('[bindery tests] label PDF rendering checks skipped: install poppler-utils (pdftoppm)');
if (!zbar) console.warn('[bindery tests] zbarimg cross-check skipped: install zbar-tools');
if (!rsvg) console.warn('[bindery tests] SVG rendering check skipped: install librsvg2-bin (rsvg-convert)');

/** The module grid of one of our PNGs: 6 px per module, 4-module quiet zone; sampled at module centres. */
function pngGrid(png: PNG): boolean[][] {
  const n = png.width / 6 - 8;
  return Array.from({ length: n }, (_, r) =>
    Array.from({ length: n }, (_, c) => png.data[(((r + 4) * 6 + 3) * png.width + (c + 4) * 6 + 3) * 4]! < 128),
  );
}

/** Parses an SVG strictly (throws if not well-formed) and rasterises its single path to modules. */
function svgGrid(svg: string): boolean[][] {
  const parser = new SaxesParser();
  let d = '';
  let viewBox = '';
  let paths = 0;
  parser.on('error', (e) => {
    throw e;
  });
  parser.on('opentag', (t) => {
    if (t.name === 'svg') viewBox = String(t.attributes.viewBox);
    if (t.name === 'path') {
      paths++;
      d = String(t.attributes.d);
    }
  });
  parser.write(svg).close();
  expect(paths).toBe(1);
  const w = Number(viewBox.split(' ')[2]);
  const n = w - 8;
  const grid = Array.from({ length: n }, () => new Array<boolean>(n).fill(false));
  // M x y+.5 h len, then m dx dy h len relative to the end of the previous run.
  const re = /([Mm])(-?\d+(?:\.5)?) (-?\d+(?:\.5)?)h(\d+)/g;
  let consumed = 0;
  let cx = 0;
  let cy = 0;
  for (const m of d.matchAll(re)) {
    consumed += m[0].length;
    const [dx, dy, len] = [Number(m[2]), Number(m[3]), Number(m[4])];
    cx = m[1] === 'M' ? dx : cx + dx;
    cy = m[1] === 'M' ? dy : cy + dy;
    const row = cy - 0.5 - 4;
    for (let c = cx; c < cx + len; c++) grid[row]![c - 4] = true;
    cx += len;
  }
  expect(consumed).toBe(d.length);
  return grid;
}

function decodePng(bytes: Uint8Array): { png: PNG; text: string | null } {
  const png = PNG.sync.read(Buffer.from(bytes));
  const rgba = new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length);
  return { png, text: jsQR(rgba, png.width, png.height)?.data ?? null };
}

/** A region of a PNG as RGBA, for decoding one label of a rendered page. */
function crop(png: PNG, x: number, y: number, w: number, h: number): { data: Uint8ClampedArray; w: number; h: number } {
  const out = new Uint8ClampedArray(w * h * 4);
  for (let row = 0; row < h; row++) {
    const from = ((y + row) * png.width + x) * 4;
    out.set(png.data.subarray(from, from + w * 4), row * w * 4);
  }
  return { data: out, w, h };
}

const mmPx = (mm: number, dpi: number) => Math.round((mm / 25.4) * dpi);

describe.each(storageBackends())('label batches on $backend.name', ({ backend, skip }) => {
  let h: Harness;
  let vendorKey: string;
  let otherKey: string;
  let modelId: string;
  let seedModelId: string;
  let seed: string;
  let bigBatch: string;
  let zip: Record<string, Uint8Array>;
  let manifest: string[][];
  let work: string;

  beforeAll(async () => {
    if (skip) return;
    h = await startHarness(backend);
    work = mkdtempSync(path.join(tmpdir(), 'bindery-prod-test-'));
    const api = (url: string, token: string, payload: object) =>
      h.app.inject({ method: 'POST', url, headers: bearer(token), payload });
    const v = (await api('/api/v1/vendors', h.operatorToken, { name: 'Acme Devices' })).json().vendor.id;
    vendorKey = (await api(`/api/v1/vendors/${v}/keys`, h.operatorToken, { name: 'factory' })).json().token;
    const o = (await api('/api/v1/vendors', h.operatorToken, { name: 'Other' })).json().vendor.id;
    otherKey = (await api(`/api/v1/vendors/${o}/keys`, h.operatorToken, { name: 'other' })).json().token;
    modelId = (await api(`/api/v1/vendors/${v}/models`, vendorKey, { name: 'Face Terminal 5510R', product_key: 'pk5510' })).json()
      .model.model_id;
    const sm = (
      await api(`/api/v1/vendors/${v}/models`, vendorKey, {
        name: 'Cellular Tracker',
        product_key: 'pkQ1',
        label_format: 'quectel',
        shared_seed: true,
      })
    ).json();
    seedModelId = sm.model.model_id;
    seed = sm.seed_secret_no;
  });
  afterAll(async () => {
    await h?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const post = (url: string, payload: object, token = vendorKey) => {
    h.clock.advance(1000); // batches are listed by creation time
    return h.app.inject({ method: 'POST', url, headers: bearer(token), payload });
  };
  const get = (url: string, token = vendorKey) => h.app.inject({ method: 'GET', url, headers: bearer(token) });
  const deviceCount = async () =>
    Number(
      (
        await h.deps.db.kysely
          .selectFrom('devices')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const batchCount = async () =>
    Number(
      (
        await h.deps.db.kysely
          .selectFrom('batches')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it.skipIf(skip)('rejects counts of 0 and 100 001 and bad patterns, writing nothing', async () => {
    const counter = { kind: 'counter', prefix: 'BND', width: 8 };
    for (const [count, pattern] of [
      [0, counter],
      [100_001, counter],
      [1.5, counter],
      [10, { kind: 'counter', prefix: 'BND', width: 0 }],
      [10, { kind: 'counter', prefix: 'B-D', width: 6 }],
      [10, { kind: 'random', prefix: 'R', length: 3 }],
      [10, { kind: 'counter', prefix: 'X', width: 2, start: 95 }],
    ] as const) {
      const r = await post(`/api/v1/models/${modelId}/batches`, { count, pattern });
      expect(r.statusCode, JSON.stringify({ count, pattern })).toBe(400);
      expect(r.json().error.code).toBe('VALIDATION_FAILED');
    }
    const r = await post(`/api/v1/models/${modelId}/batches`, { count: 0, pattern: counter });
    expect(r.json().error.message).toContain('count must be a whole number from 1 to 100000');
    expect(await deviceCount()).toBe(0);
    expect(await batchCount()).toBe(0);
  });

  it.skipIf(skip)(`creates a ${BIG}-device counter batch with check characters in one go`, HEAVY, async () => {
    const progress: Array<[number, number]> = [];
    const b = await h.services.production.createBatch(
      { kind: 'system', name: 'test' },
      modelId,
      { count: BIG, pattern: { kind: 'counter', prefix: 'BND', width: 8, checkChar: true } },
      (done, total) => progress.push([done, total]),
    );
    bigBatch = b.id;
    expect(b).toMatchObject({
      state: 'ready',
      count: BIG,
      pattern: { kind: 'counter', prefix: 'BND', width: 8, start: 1, check_char: true },
      counts: { generated: BIG, downloaded: 0, paired: 0, activated: 0, bound: 0 },
    });
    expect(progress[0]).toEqual([0, BIG]);
    expect(progress.at(-1)).toEqual([BIG, BIG]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);

    const rows = await h.deps.db.kysely
      .selectFrom('devices')
      .select(['sn', 'sn_key', 'hw_code', 'secret_no_enc', 'state', 'batch_id', 'model_id'])
      .where('batch_id', '=', b.id)
      .orderBy('id')
      .execute();
    expect(rows).toHaveLength(BIG);
    rows.forEach((d, i) => {
      expect(d.sn.slice(0, -1)).toBe(`BND${String(i + 1).padStart(8, '0')}`);
      expect(hasValidCheckChar(d.sn), d.sn).toBe(true);
      expect(d.sn_key).toBe(d.sn.toLowerCase());
      expect(d.secret_no_enc).toMatch(/^v1\./);
      expect(h.deps.secrets.open(d.secret_no_enc)).toMatch(/^[0-9a-f]{32}$/);
      expect(d.state).toBe('registered');
      expect(d.model_id).toBe(modelId);
    });
    expect(new Set(rows.map((d) => d.hw_code)).size).toBe(BIG);
    expect(b.first_sn).toBe(rows[0]!.sn);
    expect(b.last_sn).toBe(rows[BIG - 1]!.sn);
    // A batch device is a device like any other: the devices API finds it.
    const one = await get(`/api/v1/devices/${rows[7]!.sn.toLowerCase()}`);
    expect(one.json().device).toMatchObject({ sn: rows[7]!.sn, batch_id: b.id });
  });

  it.skipIf(skip)('streams the zip: every PNG decodes to its manifest QR content; SVGs match; no secrets', HEAVY, async () => {
    const res = await get(`/api/v1/batches/${bigBatch}/download`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.headers['content-disposition']).toMatch(new RegExp(`^attachment; filename="labels_${bigBatch}_\\d{14}\\.zip"$`));
    zip = unzipSync(new Uint8Array(res.rawPayload));

    const devices = await h.deps.db.kysely
      .selectFrom('devices')
      .select(['sn', 'hw_code', 'secret_no_enc'])
      .where('batch_id', '=', bigBatch)
      .orderBy('id')
      .execute();
    const names = Object.keys(zip).sort();
    expect(names).toEqual(
      [
        'README.txt',
        'labels-a4.pdf',
        'labels-roll.pdf',
        'manifest.csv',
        'manifest.xlsx',
        ...devices.map((d) => `png/${d.sn}.png`),
        ...devices.map((d) => `svg/${d.sn}.svg`),
      ].sort(),
    );

    // manifest.csv: SN, PK, hw_code, QR content — the static bind URL of each device — and
    // (issue 11) the verification code a typed bind asks for.
    manifest = parseCsv(Buffer.from(zip['manifest.csv']!).toString('utf8')) as string[][];
    expect(manifest[0]).toEqual(['SN', 'PK', 'hw_code', 'QR content', 'verification code']);
    const rows = devices.map((d) => [
      d.sn,
      'pk5510',
      d.hw_code,
      `https://bindery.test/connect/hardware?hw_code=${d.hw_code}`,
      verifCodeFor(h.deps.secrets.open(d.secret_no_enc), d.sn),
    ]);
    // The csv neutralises formula-looking fields (a hw_code may start with '-'); see shared/csv.ts.
    expect(manifest.slice(1)).toEqual(rows.map((r) => r.map(neutraliseFormula)));

    // manifest.xlsx holds the same rows, as plain text cells.
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(Buffer.from(zip['manifest.xlsx']!) as unknown as ArrayBuffer);
    const sheet = wb.worksheets[0]!;
    const xlsxRows: string[][] = [];
    sheet.eachRow((row) => {
      xlsxRows.push((row.values as unknown[]).slice(1).map((v) => String(v)));
    });
    expect(xlsxRows).toEqual([manifest[0], ...rows]);

    // Every PNG: 1-bit grayscale, decoded by jsQR to exactly its manifest content; its SVG
    // is well-formed and draws the very same modules.
    const content = new Map(manifest.slice(1).map((r) => [r[0]!, r[3]!]));
    for (const d of devices) {
      const bytes = zip[`png/${d.sn}.png`]!;
      expect(bytes[24], 'bit depth').toBe(1);
      expect(bytes[25], 'colour type').toBe(0);
      const { png, text } = decodePng(bytes);
      expect(text, d.sn).toBe(content.get(d.sn));
      const svg = Buffer.from(zip[`svg/${d.sn}.svg`]!).toString('utf8');
      expect(svgGrid(svg)).toEqual(pngGrid(png));
    }

    // No SecretNo anywhere: not in any entry, the xlsx's inner XML, or the PDFs' text.
    const secrets = new Set(devices.map((d) => h.deps.secrets.open(d.secret_no_enc)));
    const texts: string[] = [];
    for (const [name, bytes] of Object.entries(zip)) {
      texts.push(Buffer.from(bytes).toString('latin1'));
      if (name.endsWith('.xlsx'))
        for (const inner of Object.values(unzipSync(bytes))) texts.push(Buffer.from(inner).toString('utf8'));
    }
    if (poppler) {
      for (const pdf of ['labels-a4.pdf', 'labels-roll.pdf']) {
        writeFileSync(path.join(work, pdf), zip[pdf]!);
        const text = execFileSync('pdftotext', [path.join(work, pdf), '-'], { maxBuffer: 64 << 20 }).toString('utf8');
        texts.push(text);
        // ...and every label is in both PDFs, with its verification code (issue 11).
        for (const d of devices) expect(text.includes(d.sn), `${pdf} ${d.sn}`).toBe(true);
        for (const r of manifest.slice(1)) expect(text.includes(`Code ${r[4]}`), `${pdf} ${r[0]}`).toBe(true);
      }
    }
    // Every window of 32 in every run of hex digits, looked up among the batch's SecretNos.
    const leaks = (corpus: string[]) => {
      let n = 0;
      for (const t of corpus) {
        for (const m of t.matchAll(/[0-9a-f]{32,}/g)) {
          for (let i = 0; i + 32 <= m[0].length; i++) if (secrets.has(m[0].slice(i, i + 32))) n++;
        }
      }
      return n;
    };
    expect(secrets.size).toBe(BIG);
    expect(leaks(texts)).toBe(0);
    // The scan does find a SecretNo where there is one.
    expect(leaks([...texts, `x${[...secrets][7]}y`])).toBe(1);

    // Counted once the response has finished, after the client has its last byte: asked for until it shows.
    await expect
      .poll(async () => (await get(`/api/v1/batches/${bigBatch}`)).json().batch.counts.downloaded, { timeout: 15_000 })
      .toBe(1);
  });

  it.skipIf(skip || !zbar)('the PNGs also decode with zbarimg (QR only), an independent decoder', HEAVY, async () => {
    const dir = path.join(work, 'png');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const rows = manifest.slice(1);
    for (const r of rows) writeFileSync(path.join(dir, `${r[0]}.png`), zip[`png/${r[0]}.png`]!);
    const out: string[] = [];
    for (let i = 0; i < rows.length; i += 500) {
      const files = rows.slice(i, i + 500).map((r) => path.join(dir, `${r[0]}.png`));
      out.push(
        ...execFileSync('zbarimg', ['-q', '--raw', '-Sdisable', '-Sqrcode.enable', ...files], {
          maxBuffer: 16 << 20,
          stdio: ['ignore', 'pipe', 'ignore'], // its image library chatters about D-Bus on stderr
        })
          .toString('utf8')
          .trimEnd()
          .split('\n'),
      );
    }
    expect(out).toEqual(rows.map((r) => r[3]));
  });

  it.skipIf(skip || !rsvg)('SVGs rendered by librsvg scan to their manifest content', HEAVY, async () => {
    const sample = manifest.slice(1).filter((_, i) => i % 40 === 0);
    for (const [sn, , , content] of sample) {
      const file = path.join(work, `${sn}.svg`);
      writeFileSync(file, zip[`svg/${sn}.svg`]!);
      const png = execFileSync('rsvg-convert', ['-w', '270', file]);
      expect(decodePng(png).text, sn).toBe(content);
    }
  });

  it.skipIf(skip || !poppler)('renders print-ready label PDFs whose QR codes scan', HEAVY, async () => {
    const a4 = path.join(work, 'labels-a4.pdf');
    const roll = path.join(work, 'labels-roll.pdf');
    writeFileSync(a4, zip['labels-a4.pdf']!);
    writeFileSync(roll, zip['labels-roll.pdf']!);
    const info = (f: string) => execFileSync('pdfinfo', [f]).toString('utf8');
    expect(info(a4)).toMatch(new RegExp(`Pages:\\s+${Math.ceil(BIG / 32)}\\n`));
    expect(info(a4)).toMatch(/Page size:\s+595\.2\d* x 841\.8\d* pts \(A4\)/);
    expect(info(roll)).toMatch(new RegExp(`Pages:\\s+${BIG}\\n`));
    expect(info(roll)).toMatch(/Page size:\s+141\.7\d* x 85\.0\d* pts/);

    // Page 1 at 80 dpi, as a person previews it.
    execFileSync('pdftoppm', ['-png', '-r', '80', '-f', '1', '-l', '1', '-singlefile', a4, path.join(work, 'a4-80')]);
    const preview = PNG.sync.read(readFileSync(path.join(work, 'a4-80.png')));
    // pdftoppm rounds the page up to whole pixels.
    expect([preview.width, preview.height]).toEqual([Math.ceil((210 / 25.4) * 80), Math.ceil((297 / 25.4) * 80)]);

    // At print resolution the first and last labels of page 1 scan to their manifest content.
    execFileSync('pdftoppm', ['-png', '-r', '300', '-f', '1', '-l', '1', '-singlefile', a4, path.join(work, 'a4-300')]);
    const page = PNG.sync.read(readFileSync(path.join(work, 'a4-300.png')));
    const g = A4_GRID;
    const cellW = (g.pageW - 2 * g.marginX) / g.cols;
    const cellH = (g.pageH - g.marginTop - g.marginBottom) / g.rows;
    for (const k of [0, 31]) {
      const c = crop(
        page,
        mmPx(g.marginX + (k % g.cols) * cellW, 300),
        mmPx(g.marginTop + Math.floor(k / g.cols) * cellH, 300),
        mmPx(cellW, 300),
        mmPx(cellH, 300),
      );
      expect(jsQR(c.data, c.w, c.h)?.data, `label ${k}`).toBe(manifest[1 + k]![3]);
    }
    const page1 = execFileSync('pdftotext', ['-f', '1', '-l', '1', '-layout', a4, '-']).toString('utf8');
    expect(page1).toContain(manifest[1]![0]);
    expect(page1).toContain('Face Terminal 5510R');
    expect(page1).toContain(`batch ${bigBatch}`);

    // The roll label: one 50 × 30 mm page, QR on the left.
    execFileSync('pdftoppm', ['-png', '-r', '300', '-f', '2', '-l', '2', '-singlefile', roll, path.join(work, 'roll-300')]);
    const label = PNG.sync.read(readFileSync(path.join(work, 'roll-300.png')));
    expect([label.width, label.height]).toEqual([Math.ceil((ROLL.pageW / 25.4) * 300), Math.ceil((ROLL.pageH / 25.4) * 300)]);
    const qr = crop(label, 0, 0, mmPx(ROLL.qr + ROLL.pad, 300), label.height);
    expect(jsQR(qr.data, qr.w, qr.h)?.data).toBe(manifest[2]![3]);
    const text2 = execFileSync('pdftotext', ['-f', '2', '-l', '2', roll, '-']).toString('utf8');
    expect(text2).toContain(manifest[2]![0]);
  });

  it.skipIf(skip)('the secrets file decrypts to the stored SecretNo and is audited', async () => {
    const res = await get(`/api/v1/batches/${bigBatch}/secrets.csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-disposition']).toMatch(new RegExp(`filename="secrets_${bigBatch}_\\d{14}\\.csv"`));
    const rows = parseCsv(res.body) as string[][];
    expect(rows[0]).toEqual(['SN', 'SecretNo']);
    const stored = await h.deps.db.kysely
      .selectFrom('devices')
      .select(['sn', 'secret_no_enc'])
      .where('batch_id', '=', bigBatch)
      .orderBy('id')
      .execute();
    expect(rows.slice(1)).toEqual(stored.map((d) => [d.sn, h.deps.secrets.open(d.secret_no_enc)]));
    // batch.download is written when the zip's response has finished (the test above): asked for until it shows.
    const actions = async () =>
      (await h.deps.db.kysely.selectFrom('audit_log').select('action').where('subject', '=', `batch:${bigBatch}`).execute()).map(
        (a) => a.action,
      );
    await expect
      .poll(actions, { timeout: 15_000 })
      .toEqual(expect.arrayContaining(['batch.create', 'batch.download', 'batch.reveal_secrets']));
  });

  it.skipIf(skip)('a shared-seed Quectel model: labels carry pk/sn, the secrets file the seed SecretNo', async () => {
    const r = await post(`/api/v1/models/${seedModelId}/batches`, {
      count: 20,
      pattern: { kind: 'random', prefix: 'Q', length: 8, check_char: true },
    });
    expect(r.statusCode).toBe(201);
    const b = r.json().batch;
    expect(b.pattern).toEqual({ kind: 'random', prefix: 'Q', length: 8, check_char: true });
    const sec = parseCsv((await get(`/api/v1/batches/${b.id}/secrets.csv`)).body) as string[][];
    expect(sec[0]).toEqual(['SN', 'SecretNo', 'SeedSecretNo']);
    expect(sec).toHaveLength(21);
    for (const [sn, , s] of sec.slice(1)) {
      expect(sn).toMatch(/^Q[0-9ABCDEFGHJKMNPQRSTVWXYZ]{8}[0-9A-Z]$/);
      expect(hasValidCheckChar(sn!)).toBe(true);
      expect(s).toBe(seed);
    }
    const z = unzipSync(new Uint8Array((await get(`/api/v1/batches/${b.id}/download?include=png`)).rawPayload));
    expect(Object.keys(z).sort()).toEqual(['README.txt', ...sec.slice(1).map((row) => `png/${row[0]}.png`)].sort());
    for (const [sn] of sec.slice(1)) expect(decodePng(z[`png/${sn}.png`]!).text).toBe(`pk=pkQ1&sn=${sn}&v=1`);
    const zipText = Object.values(z)
      .map((v) => Buffer.from(v).toString('latin1'))
      .join('');
    expect(zipText).not.toContain(seed);
  });

  it.skipIf(skip)('counter batches continue after the highest counter already used for the prefix', async () => {
    const next = await post(`/api/v1/models/${modelId}/batches`, {
      count: 3,
      pattern: { kind: 'counter', prefix: 'BND', width: 8, check_char: true },
    });
    expect(next.json().batch.pattern.start).toBe(BIG + 1);
    expect(next.json().batch.first_sn.slice(0, -1)).toBe(`BND${String(BIG + 1).padStart(8, '0')}`);

    // A single registration (any case, with its check character) counts as used too.
    const single = 'bnd00005000';
    const { checkChar } = await import('@bindery/protocol');
    const reg = await post(`/api/v1/models/${modelId}/devices`, { sn: single + checkChar(single) });
    expect(reg.statusCode).toBe(201);
    const after = await post(`/api/v1/models/${modelId}/batches`, {
      count: 2,
      pattern: { kind: 'counter', prefix: 'BND', width: 8, check_char: true },
    });
    expect(after.json().batch.pattern.start).toBe(5001);
    // Another width is another series.
    const wide = await post(`/api/v1/models/${modelId}/batches`, {
      count: 2,
      pattern: { kind: 'counter', prefix: 'BND', width: 10 },
    });
    expect(wide.json().batch).toMatchObject({ first_sn: 'BND0000000001', last_sn: 'BND0000000002' });
  });

  it.skipIf(skip)('a counter batch that collides (ignoring case) fails whole: no devices, a failed batch', async () => {
    const before = await deviceCount();
    const r = await post(`/api/v1/models/${modelId}/batches`, {
      count: 10,
      pattern: { kind: 'counter', prefix: 'bnd', width: 8, start: BIG - 4, check_char: true },
    });
    expect(r.statusCode).toBe(409);
    const e = r.json().error;
    expect(e.code).toBe('SN_TAKEN');
    // BIG-4 … BIG from the first batch and BIG+1 … BIG+3 from the continuation are taken.
    expect(e.message).toContain('8 SNs are of this batch already registered');
    expect(e.details.taken_count).toBe(8);
    expect(e.details.taken[0].toUpperCase().slice(0, -1)).toBe(`BND${String(BIG - 4).padStart(8, '0')}`);
    expect(await deviceCount()).toBe(before);

    const failed = await get(`/api/v1/batches/${e.details.batch_id}`);
    expect(failed.json().batch).toMatchObject({ state: 'failed', counts: { generated: 0 } });
    expect(failed.json().batch.error).toContain('already registered');
    const dl = await get(`/api/v1/batches/${e.details.batch_id}/download`);
    expect(dl.statusCode).toBe(409);
    expect(dl.json().error.code).toBe('BATCH_NOT_READY');
    const sec = await get(`/api/v1/batches/${e.details.batch_id}/secrets.csv`);
    expect(sec.json().error.code).toBe('BATCH_NOT_READY');
  });

  it.skipIf(skip)('lists batches newest first with a cursor; counts follow the devices', async () => {
    const ids = (
      await h.deps.db.kysely.selectFrom('devices').select('id').where('batch_id', '=', bigBatch).orderBy('id').execute()
    ).map((d) => d.id);
    const now = h.clock.now();
    await h.deps.db.kysely
      .updateTable('devices')
      .set((eb) => ({ device_key: eb.fn('lower', ['sn']), device_key_norm: eb.fn('lower', ['sn']), paired_at: now }))
      .where('id', 'in', ids.slice(0, 3))
      .execute();
    await h.deps.db.kysely.updateTable('devices').set({ activated_at: now }).where('id', 'in', ids.slice(1, 3)).execute();
    await h.deps.db.kysely
      .updateTable('devices')
      .set({ owner_type: 'org', owner_id: 'org_x' })
      .where('id', '=', ids[2]!)
      .execute();
    const one = (await get(`/api/v1/batches/${bigBatch}`)).json().batch;
    expect(one.counts).toEqual({ generated: BIG, downloaded: 1, paired: 3, activated: 2, bound: 1 });

    const all = (await get(`/api/v1/models/${modelId}/batches`)).json();
    expect(all.batches.length).toBe(5); // big, +3, +2, width 10, failed
    expect(all.batches.at(-1).id).toBe(bigBatch);
    const times = all.batches.map((b: { created_at: string }) => b.created_at);
    expect([...times].sort().reverse()).toEqual(times);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { batches: Array<{ id: string }>; next_cursor: string | null } = (
        await get(`/api/v1/models/${modelId}/batches?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      ).json();
      seen.push(...page.batches.map((b) => b.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.batches.map((b: { id: string }) => b.id));
    const vendorList = (await get(`/api/v1/vendors/${one.vendor_id}/batches?limit=200`)).json();
    expect(vendorList.batches).toHaveLength(6);
  });

  it.skipIf(skip)("another vendor's key cannot see, download or read secrets of a batch", async () => {
    for (const url of [
      `/api/v1/batches/${bigBatch}`,
      `/api/v1/batches/${bigBatch}/download`,
      `/api/v1/batches/${bigBatch}/secrets.csv`,
    ]) {
      const r = await get(url, otherKey);
      expect(r.statusCode, url).toBe(403);
    }
    expect((await get(`/api/v1/models/${modelId}/batches`, otherKey)).statusCode).toBe(403);
    expect(
      (await post(`/api/v1/models/${modelId}/batches`, { count: 1, pattern: { kind: 'random', length: 8 } }, otherKey))
        .statusCode,
    ).toBe(403);
    const missing = await get('/api/v1/batches/bat_nope');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('BATCH_NOT_FOUND');
    expect((await h.app.inject({ method: 'GET', url: `/api/v1/batches/${bigBatch}` })).statusCode).toBe(401);
  });

  it.skipIf(skip)('respects backpressure: a slow reader never has more than a few chunks queued', HEAVY, async () => {
    let maxQueued = 0;
    let total = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        total += chunk.length;
        maxQueued = Math.max(maxQueued, this.writableLength);
        setImmediate(cb);
      },
    });
    const progress: number[] = [];
    const r = await h.services.production.writeBatchZip({ kind: 'system', name: 'test' }, bigBatch, slow, {
      include: ['png', 'svg'],
      onProgress: (done) => progress.push(done),
    });
    expect(r.entries).toBe(2 * BIG + 1);
    expect(total).toBe(r.bytes);
    expect(total).toBeGreaterThan(2_000_000);
    // Writes are ~64 KB and the writer waits for 'drain': the queue stays near one write.
    expect(maxQueued).toBeLessThan(512 * 1024);
    expect(progress.at(-1)).toBe(BIG);
  });

  it.skipIf(skip)('an aborted download stops, is not counted, and leaves no temporary files', HEAVY, async () => {
    const before = (await get(`/api/v1/batches/${bigBatch}`)).json().batch.counts.downloaded;
    const ours = () => readdirSync(tmpdir()).filter((f) => f.startsWith(`bindery-labels-${bigBatch}-`));
    expect(ours()).toEqual([]);
    let seen = 0;
    const failing = new Writable({
      write(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        cb(seen > 300_000 ? new Error('client went away') : null);
      },
    });
    // PDFs only: it fails while labels-a4.pdf streams and labels-roll.pdf is being written to a temp file.
    await expect(
      h.services.production.writeBatchZip({ kind: 'system', name: 'test' }, bigBatch, failing, { include: ['pdf'] }),
    ).rejects.toThrow();
    expect(seen).toBeGreaterThan(300_000);
    expect((await get(`/api/v1/batches/${bigBatch}`)).json().batch.counts.downloaded).toBe(before);
    expect(ours()).toEqual([]);
    // The service still works afterwards.
    const again = await get(`/api/v1/batches/${bigBatch}/download?include=manifest`);
    expect(Object.keys(unzipSync(new Uint8Array(again.rawPayload))).sort()).toEqual([
      'README.txt',
      'manifest.csv',
      'manifest.xlsx',
    ]);
    expect(existsSync(work)).toBe(true);
  });
});
