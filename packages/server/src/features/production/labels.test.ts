import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { unzipSync } from 'fflate';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import QRCode from 'qrcode';
import { afterAll, describe, expect, it } from 'vitest';
import { A4_GRID, writeLabelPdf } from './label-pdf.js';
import { fastGetBestMask, qrcodeMaskModule } from './qr-mask.js';
import {
  crc32,
  darkRects,
  encodeQrPng,
  optimalSegments,
  packMatrix,
  pdfQrOps,
  type QrMatrix,
  qrMatrix,
  qrSvg,
  unpackMatrix,
} from './qr-render.js';
import { ZipWriter } from './zip-writer.js';

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

const work = mkdtempSync(path.join(tmpdir(), 'bindery-labeltest-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function collect(run: (out: PassThrough) => Promise<void>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await run(out);
  return Buffer.concat(chunks);
}

describe('QR rendering from one matrix', () => {
  const texts = [
    'pk=pk5510&sn=BND00000001Z&v=1',
    'https://bindery.test/connect/hardware?hw_code=Q2hvb3NlIHlvdXIgb3du',
    // A long custom template: a much larger symbol version.
    `ACME:${'0123456789ABCDEFGHIJ'.repeat(20)}:END`,
  ];

  it.each(texts)('a 1-bit grayscale PNG of %s decodes to the text and matches the matrix', (text) => {
    const m = qrMatrix(text);
    const bytes = encodeQrPng(m);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect([bytes[24], bytes[25]]).toEqual([1, 0]); // IHDR bit depth 1, colour type 0
    const png = PNG.sync.read(bytes);
    expect(png.width).toBe((m.size + 8) * 6);
    const rgba = new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length);
    expect(jsQR(rgba, png.width, png.height)?.data).toBe(text);
    // Every pixel is the module it belongs to (white in the quiet zone).
    for (let y = 0; y < png.height; y += 5) {
      for (let x = 0; x < png.width; x += 5) {
        const r = Math.floor(y / 6) - 4;
        const c = Math.floor(x / 6) - 4;
        const dark = r >= 0 && c >= 0 && r < m.size && c < m.size && m.data[r * m.size + c] === 1;
        expect(png.data[(y * png.width + x) * 4]).toBe(dark ? 0 : 255);
      }
    }
  });

  it('segments optimally: never a larger symbol than qrcode’s own optimiser, and the same text', () => {
    const pick = (alphabet: string, len: number) =>
      Array.from({ length: len }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
    const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const samples: string[] = [];
    for (let i = 0; i < 150; i++) {
      samples.push(
        `https://bindery.test/connect/hardware?hw_code=${pick(b64, 22)}`,
        `pk=${pick(b64, 8)}&sn=${pick('0123456789', 18)}&v=1`,
        `ACME:${pick('0123456789', 10 + (i % 60))}:${pick('ABCDEFGHJKMNPQRSTVWXYZ0123456789', 5 + (i % 40))}:${pick(b64, i % 30)}`,
        `${pick('0123456789ABCDEF $%*+-./:', 100 + i * 3)}`,
        `型号${pick('0123456789', i % 25)}ü${pick(b64, i % 9)}`,
      );
    }
    for (const text of samples) {
      const segs = optimalSegments(text, 0);
      expect(segs.map((g) => g.data).join('')).toBe(text);
      for (const g of segs) {
        if (g.mode === 'numeric') expect(g.data).toMatch(/^[0-9]+$/);
        if (g.mode === 'alphanumeric') expect(g.data).toMatch(/^[0-9A-Z $%*+\-./:]+$/);
      }
      const ours = qrMatrix(text).size;
      const theirs = QRCode.create(text, { errorCorrectionLevel: 'M' }).modules.size;
      expect(ours, text).toBeLessThanOrEqual(theirs);
    }
    // Spot-check that what is drawn scans back to the text (the batch suite checks every label).
    for (const text of samples.filter((_, i) => i % 25 === 0)) {
      const png = PNG.sync.read(encodeQrPng(qrMatrix(text)));
      const rgba = new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length);
      expect(jsQR(rgba, png.width, png.height)?.data).toBe(text);
    }
  });

  it('the fast mask choice picks exactly the mask qrcode picks, so symbols are identical', () => {
    const mod = qrcodeMaskModule();
    expect(mod, 'qrcode/lib/core/mask-pattern.js has the expected shape').not.toBeNull();
    const original = mod!.getBestMask;
    const texts = Array.from({ length: 1500 }, (_, i) =>
      i % 3 === 0
        ? `https://bindery.test/connect/hardware?hw_code=${Buffer.from(String(Math.random())).toString('base64url').slice(0, 22)}`
        : i % 3 === 1
          ? `pk=pk${i}&sn=BND${String(i).padStart(8, '0')}&v=1`
          : `X${'0123456789ABCDEF'.repeat(1 + (i % 25)).slice(i % 7)}`,
    );
    const symbols = (pick: typeof original) => {
      mod!.getBestMask = pick;
      try {
        return texts.map((t) => {
          const c = QRCode.create(t, { errorCorrectionLevel: 'M' });
          return { mask: c.maskPattern, data: Buffer.from(c.modules.data) };
        });
      } finally {
        mod!.getBestMask = original;
      }
    };
    const want = symbols(original);
    const got = symbols(fastGetBestMask);
    const masks = new Set<number>();
    got.forEach((g, i) => {
      expect(g.mask, texts[i]).toBe(want[i]!.mask);
      expect(g.data.equals(want[i]!.data), texts[i]).toBe(true);
      masks.add(g.mask!);
    });
    expect(masks.size).toBe(8); // every pattern was chosen somewhere: all 8 scorings are exercised
  });

  it('the PDF path (merged rectangles) covers exactly the dark modules, each once', () => {
    for (let k = 0; k < 300; k++) {
      const m = qrMatrix(`https://bindery.example/connect/hardware?hw_code=${k.toString(36).repeat((k % 7) + 1)}`);
      const cover = new Uint8Array(m.size * m.size);
      const rects = darkRects(m);
      for (let i = 0; i < rects.length; i += 4) {
        const [c, r, w, hh] = rects.slice(i, i + 4) as [number, number, number, number];
        for (let y = r; y < r + hh; y++) for (let x = c; x < c + w; x++) cover[y * m.size + x]!++;
      }
      expect(Array.from(cover)).toEqual(Array.from(m.data));
      // Merging is what it is for: fewer rectangles than runs, all in one filled path.
      const ops = pdfQrOps(m);
      expect(ops.match(/ re\n/g)?.length).toBe(rects.length / 4);
      expect(ops.endsWith('f\n')).toBe(true);
    }
  });

  it('packs a matrix into 1 + ⌈n²/8⌉ bytes and back', () => {
    const m = qrMatrix(texts[1]!);
    const p = packMatrix(m);
    expect(p.length).toBe(1 + Math.ceil((m.size * m.size) / 8));
    const back: QrMatrix = unpackMatrix(p);
    expect(back.size).toBe(m.size);
    expect(Array.from(back.data)).toEqual(Array.from(m.data).map((v) => (v ? 1 : 0)));
  });

  it('an SVG carries the SN as its title, escaped', () => {
    const svg = qrSvg(qrMatrix('x'), 'a<b&"c"');
    expect(svg).toContain('<title>a&#60;b&#38;&#34;c&#34;</title>');
    expect(svg.match(/<path /g)).toHaveLength(1);
  });
});

describe('the streaming zip writer', () => {
  it.each([
    ['in memory', false],
    ['spilled to a file', true],
  ])(
    'writes ZIP64 when there are more than 65 535 entries, readable by independent readers (central directory %s)',
    async (_, spill) => {
      const N = 70_000;
      // The spill keeps full central-directory blocks (1 MiB each) aside; 70 000 records fill ~4.
      const spilled: Uint8Array[] = [];
      const buf = await collect(async (out) => {
        const zip = new ZipWriter(
          out,
          new Date(Date.UTC(2026, 10, 21, 12, 0, 0)),
          undefined,
          spill
            ? {
                write: async (block) => {
                  spilled.push(Buffer.from(block));
                },
                read: () => Readable.from(spilled),
              }
            : undefined,
        );
        for (let i = 0; i < N; i++) {
          const data = Buffer.from(`entry ${i}\n`);
          await zip.add(`d/${i}.txt`, { data, crc: crc32(data) });
        }
        await zip.finish();
      });
      const eocd = buf.length - 22;
      expect(buf.readUInt32LE(eocd)).toBe(0x06054b50);
      expect(buf.readUInt16LE(eocd + 10)).toBe(0xffff); // the count lives in the ZIP64 record
      expect(buf.readUInt32LE(eocd - 20)).toBe(0x07064b50);
      const files = unzipSync(new Uint8Array(buf));
      expect(Object.keys(files)).toHaveLength(N);
      expect(Buffer.from(files['d/69999.txt']!).toString()).toBe('entry 69999\n');
      expect(spilled.length > 0).toBe(spill);
      if (hasTool('unzip')) {
        const f = path.join(work, `z64-${spill}.zip`);
        writeFileSync(f, buf);
        expect(execFileSync('unzip', ['-tq', f]).toString()).toContain('No errors detected');
      }
    },
  );

  it('streams entries of unknown size with data descriptors, stored or deflated', async () => {
    const big = Buffer.alloc(300_000, 'label ');
    const source = () => Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]);
    const buf = await collect(async (out) => {
      const zip = new ZipWriter(out);
      await zip.addStream('deflated.txt', source(), { deflate: true });
      await zip.addStream('stored.txt', source(), { deflate: false });
      await zip.addKnownStream('known.txt', source(), { crc: crc32(big), size: big.length });
      await zip.finish();
    });
    expect(buf.length).toBeLessThan(2 * big.length + 10_000); // the deflated one shrank
    const files = unzipSync(new Uint8Array(buf));
    for (const name of ['deflated.txt', 'stored.txt', 'known.txt'])
      expect(Buffer.from(files[name]!).equals(big), name).toBe(true);
    if (hasTool('unzip')) {
      const f = path.join(work, 'dd.zip');
      writeFileSync(f, buf);
      expect(execFileSync('unzip', ['-tq', f]).toString()).toContain('No errors detected');
    }
  });

  it('gives up on a reader that stops reading', async () => {
    // A reader that never takes anything: the first full write waits for 'drain' forever.
    const stuck = new PassThrough({ highWaterMark: 1024 });
    const zip = new ZipWriter(stuck, new Date(), 50);
    const big = Buffer.alloc(200_000, 1);
    await expect(zip.add('big.bin', { data: big, crc: crc32(big) })).rejects.toThrow(/took nothing/);
  });

  it('fails, instead of buffering, when the output goes away', async () => {
    const out = new PassThrough();
    const zip = new ZipWriter(out);
    out.destroy();
    await new Promise((r) => setImmediate(r));
    await expect(zip.add('a.txt', { data: Buffer.from('a'), crc: crc32(Buffer.from('a')) })).rejects.toThrow(/closed/);
  });
});

const poppler = hasTool('pdftotext');
const CJK_FONTS = [
  '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc',
  '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc',
  '/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc',
  '/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf',
];

describe.skipIf(!poppler)('label PDFs', () => {
  async function pdfText(modelName: string, sns: string[], layout: 'a4' | 'roll'): Promise<string> {
    const matrices = sns.map((sn) => qrMatrix(`pk=p&sn=${sn}&v=1`));
    const chunks: Buffer[] = [];
    await writeLabelPdf(
      layout,
      { count: sns.length, sn: (i) => sns[i]!, code: (i) => String(100000 + i), matrix: (i) => matrices[i]! },
      { modelName, batchId: 'bat_test' },
      { write: (c) => chunks.push(c), ready: async () => {} },
    );
    const f = path.join(work, `t-${layout}.pdf`);
    writeFileSync(f, Buffer.concat(chunks));
    return execFileSync('pdftotext', [f, '-']).toString('utf8');
  }

  it('prints Latin-1 model names with the standard fonts', async () => {
    const text = await pdfText('Café Modèle Ü', ['SN1', 'SN2'], 'a4');
    expect(text).toContain('Café Modèle Ü');
    expect(text).toContain('SN2');
  });

  it('prints Chinese model names with a system CJK font, or "?" when the machine has none', async () => {
    const text = await pdfText('智能门禁 X1', ['SN1'], 'roll');
    if (CJK_FONTS.some((f) => existsSync(f))) expect(text).toContain('智能门禁 X1');
    else expect(text).toContain('???? X1');
  });

  it("issue 11: prints every label's verification code in readable text, on A4 sheets and roll labels", async () => {
    for (const layout of ['a4', 'roll'] as const) {
      const text = await pdfText('Tracker', ['SN1', 'SN2', 'SN3'], layout);
      for (const code of ['100000', '100001', '100002']) expect(text, layout).toContain(`Code ${code}`);
    }
  });

  it('issue 16: a roll of many pages keeps a page tree readers follow, each page in order', async () => {
    // The writer keeps only written pages' object numbers and offsets; the tree is written at the end.
    const sns = Array.from({ length: 40 }, (_, i) => `SN${String(i).padStart(4, '0')}`);
    const text = await pdfText('Tracker', sns, 'roll');
    expect(execFileSync('pdfinfo', [path.join(work, 't-roll.pdf')]).toString('utf8')).toMatch(/^Pages:\s+40$/m);
    const printed = text.split('\n').filter((l) => /^SN\d{4}$/.test(l.trim()));
    expect(printed.map((l) => l.trim())).toEqual(sns);
  });

  it('wraps a long SN on the roll label instead of running off the page', async () => {
    const sn = 'ABCDEFGHJKMNPQRSTVWXYZ0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const text = await pdfText('Tracker', [sn], 'roll');
    const lines = text.split('\n').filter((l) => /^[A-Z0-9]+$/.test(l.trim()));
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.join('')).toBe(sn);
  });

  /** An A4 sheet's page image cut into its 32 cells (row by row), each written as a PNG. */
  function a4Cells(page: string, prefix: string, dpi: number): string[] {
    const img = PNG.sync.read(readFileSync(page));
    const g = A4_GRID;
    const px = (mm: number) => Math.round((mm / 25.4) * dpi);
    const [cw, ch] = [(g.pageW - 2 * g.marginX) / g.cols, (g.pageH - g.marginTop - g.marginBottom) / g.rows];
    const files: string[] = [];
    for (let k = 0; k < g.cols * g.rows; k++) {
      const [x, y] = [px(g.marginX + (k % g.cols) * cw), px(g.marginTop + Math.floor(k / g.cols) * ch)];
      const cell = new PNG({ width: px(cw), height: px(ch) });
      for (let row = 0; row < cell.height; row++) {
        const from = ((y + row) * img.width + x) * 4;
        cell.data.set(img.data.subarray(from, from + cell.width * 4), row * cell.width * 4);
      }
      const f = `${prefix}-${String(k).padStart(2, '0')}.png`;
      writeFileSync(f, PNG.sync.write(cell));
      files.push(f);
    }
    return files;
  }

  const quiet = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 16 << 20 });
    expect(r.status, `${cmd} ${r.stderr}`).toBe(0);
    // Poppler reports every repair it makes to a damaged file (xref, streams, fonts) on stderr.
    expect(r.stderr, `${cmd} ${args.join(' ')}`).toBe('');
    return r.stdout;
  };

  it.each(['a4', 'roll'] as const)(
    'issue 16: a %s PDF parses cleanly, with its fonts defined once for all pages and the name in the info',
    async (layout) => {
      const sns = Array.from({ length: 70 }, (_, i) => `SN${String(i).padStart(4, '0')}`);
      const text = await pdfText('智能门禁 X1', sns, layout);
      const file = path.join(work, `t-${layout}.pdf`);
      const info = quiet('pdfinfo', [file]);
      expect(info).toMatch(new RegExp(`^Pages:\\s+${layout === 'a4' ? 3 : 70}$`, 'm'));
      expect(info).toMatch(/^Creator:\s+Bindery$/m);
      expect(info).toMatch(/^Producer:\s+Bindery$/m);
      const cjk = CJK_FONTS.some((f) => existsSync(f));
      expect(info).toMatch(new RegExp(`^Title:\\s+Labels bat_test \\(${cjk ? '智能门禁' : '(智能门禁|\\?+)'} X1\\)$`, 'm'));
      expect(quiet('pdftotext', [file, '-'])).toBe(text);
      // Object dictionaries are not compressed: every page names the same resources dictionary.
      const raw = readFileSync(file).toString('latin1');
      // Every cross-reference entry points at its object, so readers need no repair.
      const xrefAt = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(raw)![1]);
      const [, size, table] = /^xref\n0 (\d+)\n([\s\S]*?)trailer/.exec(raw.slice(xrefAt))!;
      const entries = table!.match(/.{20}/gs)!;
      expect(entries).toHaveLength(Number(size));
      const astray = entries.slice(1).filter((e, k) => !raw.startsWith(`${k + 1} 0 obj\n`, Number(e.slice(0, 10))));
      expect(astray).toEqual([]);
      const resources = new Set([...raw.matchAll(/\/Type \/Page .*?\/Resources (\d+) 0 R/g)].map((m) => m[1]));
      expect(resources.size).toBe(1);
      const fonts = quiet('pdffonts', [file]).trim().split('\n').slice(2);
      if (cjk) {
        expect(raw.match(/\/Subtype \/Type0 /g)).toHaveLength(1);
        expect(fonts).toHaveLength(3);
        expect(fonts.find((l) => /CID TrueType|CID Type 0C/.test(l))).toMatch(/Identity-H\s+yes\s+yes\s+yes/);
        if (layout === 'a4') expect(text).toContain('智能门禁 X1 · batch bat_test · labels 33–64 of 70 · page 2 of 3');
      }
      expect(fonts.filter((l) => /^Helvetica(-Bold)?\s+Type 1\s+WinAnsi\s+no/.test(l))).toHaveLength(2);
    },
  );

  it.skipIf(!hasTool('pdftoppm') || !hasTool('zbarimg'))(
    'issue 16: 100 labels on A4 sheets and on a roll render, and every QR decodes (zbarimg)',
    { timeout: 120_000 },
    async () => {
      const sns = Array.from({ length: 100 }, (_, i) => `BND${String(i * 7919).padStart(8, '0')}Z`);
      const contents = sns.map((sn) => `https://bindery.test/c?pk=pk5510&sn=${sn}&v=1`);
      const matrices = contents.map((c) => qrMatrix(c));
      for (const layout of ['a4', 'roll'] as const) {
        const chunks: Buffer[] = [];
        const src = {
          count: 100,
          sn: (i: number) => sns[i]!,
          code: (i: number) => String(100000 + i),
          matrix: (i: number) => matrices[i]!,
        };
        await writeLabelPdf(
          layout,
          src,
          { modelName: 'Tracker', batchId: 'bat_qr' },
          { write: (c) => chunks.push(c), ready: async () => {} },
        );
        const dir = mkdtempSync(path.join(work, `${layout}-`));
        const file = path.join(dir, 'labels.pdf');
        writeFileSync(file, Buffer.concat(chunks));
        quiet('pdftoppm', ['-png', '-r', '150', file, path.join(dir, 'p')]);
        const pages = readdirSync(dir)
          .filter((f) => f.startsWith('p-'))
          .sort()
          .map((f) => path.join(dir, f));
        expect(pages).toHaveLength(layout === 'a4' ? 4 : 100);
        // zbarimg misses codes on a whole sheet (as it did with pdfkit's): scan the sheet cell by cell.
        const images = layout === 'roll' ? pages : pages.flatMap((f, p) => a4Cells(f, path.join(dir, `c${p}`), 150));
        const decoded = execFileSync('zbarimg', ['-q', '--raw', '-Sdisable', '-Sqrcode.enable', ...images.slice(0, 100)], {
          maxBuffer: 16 << 20,
          stdio: ['ignore', 'pipe', 'ignore'], // its image library chatters about D-Bus on stderr
        })
          .toString('utf8')
          .trimEnd()
          .split('\n');
        expect(decoded, layout).toEqual(contents);
      }
    },
  );
});
