import { readFileSync } from 'node:fs';
import type { FleetDeviceSpec } from './fleet.js';

/**
 * Reads the devices of a batch manifest: the batch secrets file (`SN,SecretNo[,SeedSecretNo]`,
 * GET /api/v1/batches/<id>/secrets.csv or `bindery batch secrets`), any CSV with those columns in
 * any case or snake_case, or JSON (an array, or one object per line) with sn / secret_no /
 * seed_secret_no. Every problem is reported with its line, and nothing is returned if any.
 */
export function parseManifest(text: string, opts: { seedOnly?: boolean } = {}): FleetDeviceSpec[] {
  const t = text.replace(/^\uFEFF/, '').trim();
  if (t === '') throw new ManifestError(['the manifest is empty']);
  const rows = t.startsWith('[') || t.startsWith('{') ? jsonRows(t) : csvRows(t);
  const problems: string[] = [];
  const seen = new Set<string>();
  const specs: FleetDeviceSpec[] = [];
  for (const { line, r } of rows) {
    const sn = pick(r, 'sn');
    const secretNo = pick(r, 'secretno');
    const seed = pick(r, 'seedsecretno');
    if (!sn || !/^[0-9A-Za-z]{1,128}$/.test(sn)) {
      problems.push(`line ${line}: SN must be 1–128 characters of 0-9, A-Z, a-z`);
      continue;
    }
    if (seen.has(sn.toLowerCase())) {
      problems.push(`line ${line}: SN ${sn} appears twice`);
      continue;
    }
    seen.add(sn.toLowerCase());
    if (!secretNo && !seed) {
      problems.push(`line ${line}: ${sn} has neither a SecretNo nor a SeedSecretNo`);
      continue;
    }
    if (opts.seedOnly && !seed) {
      problems.push(`line ${line}: ${sn} has no SeedSecretNo to start from`);
      continue;
    }
    const spec: FleetDeviceSpec = { sn };
    if (secretNo && !opts.seedOnly) spec.secretNo = secretNo;
    if (seed) spec.seedSecretNo = seed;
    const activeCode = pick(r, 'activecode');
    const secret = pick(r, 'secret');
    if (activeCode) spec.activeCode = activeCode;
    if (secret) spec.secret = secret;
    specs.push(spec);
  }
  if (problems.length > 0) throw new ManifestError(problems);
  return specs;
}

export function loadManifest(file: string, opts: { seedOnly?: boolean } = {}): FleetDeviceSpec[] {
  return parseManifest(readFileSync(file, 'utf8'), opts);
}

export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `bad manifest:\n  ${problems.slice(0, 20).join('\n  ')}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ''}`,
    );
    this.name = 'ManifestError';
  }
}

type Row = { line: number; r: Map<string, string> };

/** Column names compared without case, spaces, dashes or underscores: SecretNo = secret_no. */
function norm(k: string): string {
  return k.toLowerCase().replace(/[\s_-]/g, '');
}

function pick(r: Map<string, string>, key: string): string | undefined {
  const v = r.get(key)?.trim();
  return v === '' ? undefined : v;
}

function csvRows(t: string): Row[] {
  const lines = t.split(/\r?\n/);
  const header = splitCsv(lines[0]!).map(norm);
  if (!header.includes('sn')) throw new ManifestError(['line 1: the header has no SN column']);
  const rows: Row[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    const cells = splitCsv(lines[i]!);
    rows.push({ line: i + 1, r: new Map(header.map((h, j) => [h, cells[j] ?? ''])) });
  }
  return rows;
}

/** One CSV line; quoted cells may hold commas and doubled quotes (SNs and secrets never span lines). */
function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function jsonRows(t: string): Row[] {
  let items: Array<{ line: number; v: unknown }>;
  if (t.startsWith('[')) {
    const arr = JSON.parse(t) as unknown;
    if (!Array.isArray(arr)) throw new ManifestError(['the JSON manifest is not an array']);
    items = arr.map((v, i) => ({ line: i + 1, v }));
  } else {
    items = t
      .split(/\r?\n/)
      .map((l, i) => ({ l, i }))
      .filter(({ l }) => l.trim() !== '')
      .map(({ l, i }) => {
        try {
          return { line: i + 1, v: JSON.parse(l) as unknown };
        } catch {
          throw new ManifestError([`line ${i + 1}: not JSON`]);
        }
      });
  }
  return items.map(({ line, v }) => {
    const r = new Map<string, string>();
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'string') r.set(norm(k), x);
    return { line, r };
  });
}
