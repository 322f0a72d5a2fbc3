import { ConfigError } from '@bindery/server/config.js';
import { AppError, ERRORS } from '@bindery/server/errors.js';
import { CommanderError } from 'commander';

/** What a command failure looks like on either channel: the catalogue's code, a sentence, specifics. */
export interface CliError {
  code: string;
  message: string;
  details?: unknown;
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

/**
 * Where results go. With --json every command prints exactly one JSON document on stdout (errors
 * included, as {"error":{…}}), so scripts can parse it; without it, people get tables on stdout
 * and errors and notes on stderr.
 */
export class Output {
  private printed = false;

  constructor(
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr,
    public json = false,
  ) {}

  /**
   * The command's one result: `doc` with --json, otherwise what `human` returns (a string, or
   * nothing when the command has nothing to show). A second call is a bug in the command.
   */
  result(doc: unknown, human: () => string | undefined): void {
    if (this.printed) throw new Error('a command printed two results');
    this.printed = true;
    if (this.json) {
      this.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return;
    }
    const text = human();
    if (text) this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A side remark for people (warnings, "shown once" notices); never pollutes --json stdout. */
  note(text: string): void {
    if (!this.json) this.stderr.write(`${text}\n`);
  }

  error(e: CliError): void {
    if (this.json) {
      // A failure after a result was printed would make two documents; the error wins the exit code only.
      if (!this.printed) this.stdout.write(`${JSON.stringify({ error: e }, null, 2)}\n`);
      this.printed = true;
      return;
    }
    this.stderr.write(`${formatHumanError(e)}\n`);
  }
}

/** Maps anything thrown to the catalogue's shape. Unknown errors keep their message (it is all we have). */
export function toCliError(e: unknown): CliError {
  if (e instanceof AppError) {
    return { code: e.code, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}) };
  }
  if (e instanceof ConfigError) {
    return { code: 'CONFIG_INVALID', message: ERRORS.CONFIG_INVALID.message, details: { problems: e.problems } };
  }
  if (e instanceof CommanderError) {
    return { code: 'VALIDATION_FAILED', message: e.message.replace(/^error: /, '') };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message };
}

interface ImportErrorLine {
  line?: number;
  column?: string;
  value?: string;
  message?: string;
}

function formatHumanError(e: CliError): string {
  const d = e.details as
    | { problems?: unknown; errors?: unknown; error_count?: unknown; total_errors?: unknown }
    | undefined
    | null;
  // When the message merely joins the listed problems, head the list with the catalogue's sentence.
  const listed = !!d && Array.isArray(d.problems) && e.message === d.problems.join('; ');
  const head = listed ? (ERRORS[e.code as keyof typeof ERRORS]?.message ?? e.message) : e.message;
  const lines = [`error ${e.code}: ${head}`];
  if (d && typeof d === 'object') {
    if (Array.isArray(d.problems)) for (const p of d.problems) lines.push(`  - ${String(p)}`);
    if (Array.isArray(d.errors)) {
      lines.push(...formatLineErrors(d.errors as ImportErrorLine[]));
      const total = Number(d.error_count ?? d.total_errors ?? d.errors.length);
      if (total > d.errors.length) lines.push(`  … and ${total - d.errors.length} more`);
    }
    if (!Array.isArray(d.problems) && !Array.isArray(d.errors)) lines.push(`  ${JSON.stringify(d)}`);
  }
  return lines.join('\n');
}

/** "line 7, DeviceKey "123": message" — the line number as a person sees it in the file. */
export function formatLineErrors(errors: ImportErrorLine[]): string[] {
  return errors.map((x) => {
    const where = [x.line !== undefined ? `line ${x.line}` : null, x.column ?? null].filter(Boolean).join(', ');
    const value = x.value !== undefined && x.value !== '' ? ` "${x.value}"` : '';
    return `  ${where}${value}: ${x.message ?? ''}`;
  });
}

/** Terminal width of a string: CJK and other wide characters take two cells (category names are Chinese). */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    w +=
      (cp >= 0x1100 && cp <= 0x115f) ||
      (cp >= 0x2e80 && cp <= 0xa4cf) ||
      (cp >= 0xac00 && cp <= 0xd7a3) ||
      (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0xfe30 && cp <= 0xfe4f) ||
      (cp >= 0xff00 && cp <= 0xff60) ||
      (cp >= 0xffe0 && cp <= 0xffe6) ||
      (cp >= 0x20000 && cp <= 0x3fffd)
        ? 2
        : 1;
  }
  return w;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

function pad(s: string, width: number): string {
  return s + ' '.repeat(Math.max(0, width - displayWidth(s)));
}

/** A plain aligned table; an empty list says so instead of printing a bare header. */
export function table<T>(rows: T[], columns: Column<T>[], empty = '(none)'): string {
  if (rows.length === 0) return empty;
  const cells = rows.map((r) => columns.map((c) => cell(c.value(r))));
  const widths = columns.map((c, i) => Math.max(displayWidth(c.header), ...cells.map((r) => displayWidth(r[i]!))));
  const line = (values: string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : pad(v, widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
}

/** "key  value" lines for one object, in the object's own order. */
export function keyValues(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  const w = Math.max(...keys.map((k) => k.length));
  return keys
    .map((k) => {
      const v = obj[k];
      const s = v !== null && typeof v === 'object' ? JSON.stringify(v) : cell(v);
      return `${k.padEnd(w)}  ${s}`;
    })
    .join('\n');
}
