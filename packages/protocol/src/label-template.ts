/**
 * Custom label templates (docs/labels.md §Custom labels): the text a model's labels carry, e.g.
 * `ACME;{pk};{sn}`, is also how they are read. A template compiles into an anchored matcher:
 * literal text matches itself, each placeholder captures a value of its own class. Pure: no I/O.
 */

export type LabelPlaceholder = 'pk' | 'sn' | 'hw_code';

/** What each placeholder's value may contain (product keys, §B2 SNs, base64url hw_codes) and how long. */
export const PLACEHOLDER_CLASSES: Record<LabelPlaceholder, { chars: string; max: number }> = {
  pk: { chars: '0-9A-Za-z_-', max: 64 },
  sn: { chars: '0-9A-Za-z', max: 128 },
  hw_code: { chars: '0-9A-Za-z_-', max: 64 },
};

const PLACEHOLDERS = Object.keys(PLACEHOLDER_CLASSES) as LabelPlaceholder[];

export type TemplateToken = { lit: string } | { ph: LabelPlaceholder };

export interface LabelTemplateMatch {
  pk?: string;
  sn?: string;
  hw_code?: string;
}

export interface CompiledLabelTemplate {
  template: string;
  /** Placeholders bound to a fixed value (a model's own product key) are literal text here. */
  tokens: TemplateToken[];
  regex: RegExp;
  match(text: string): LabelTemplateMatch | null;
}

const classRe = (p: LabelPlaceholder) => new RegExp(`^[${PLACEHOLDER_CLASSES[p].chars}]$`);
const CLASS_TEST: Record<LabelPlaceholder, RegExp> = { pk: classRe('pk'), sn: classRe('sn'), hw_code: classRe('hw_code') };

function inClass(p: LabelPlaceholder, ch: string): boolean {
  return CLASS_TEST[p].test(ch);
}

/** Splits a template into literal runs and placeholders; unknown `{…}` stay literal (validation names them). */
export function tokenizeLabelTemplate(t: string): TemplateToken[] {
  const out: TemplateToken[] = [];
  let lit = '';
  for (const part of t.split(/(\{[^{}]*\})/)) {
    const name = part.startsWith('{') && part.endsWith('}') ? part.slice(1, -1) : null;
    if (name !== null && (PLACEHOLDERS as string[]).includes(name)) {
      if (lit) out.push({ lit });
      lit = '';
      out.push({ ph: name as LabelPlaceholder });
    } else lit += part;
  }
  if (lit) out.push({ lit });
  return out;
}

/**
 * Problems with a custom label template, as a model's save refuses it. A template must carry
 * `{pk}` and `{sn}` (that is how its labels are read back), each placeholder at most once, and be
 * readable one way only: every placeholder but the last is followed directly by a literal character
 * its value cannot contain (`ACME;{pk};{sn}` is fine; `{pk}-{sn}` is not, product keys may contain `-`).
 */
export function validateLabelTemplate(t: string): string[] {
  const problems: string[] = [];
  if (typeof t !== 'string' || t.length === 0 || t.length > 512) return ['template must be 1–512 characters'];
  const missing = ['{pk}', '{sn}'].filter((p) => !t.includes(p));
  if (missing.length > 0) problems.push(`template must contain {pk} and {sn} (missing ${missing.join(', ')})`);
  const unknown = t.match(/\{[^}]*\}/g)?.filter((p) => !PLACEHOLDERS.includes(p.slice(1, -1) as LabelPlaceholder)) ?? [];
  if (unknown.length > 0) problems.push(`unknown placeholders: ${unknown.join(', ')}`);
  if (unknown.length > 0) return problems;
  const tokens = tokenizeLabelTemplate(t);
  const seen = new Set<string>();
  tokens.forEach((tok, i) => {
    if (!('ph' in tok)) return;
    if (seen.has(tok.ph)) problems.push(`{${tok.ph}} may appear only once`);
    seen.add(tok.ph);
    const laterPlaceholder = tokens.slice(i + 1).some((x) => 'ph' in x);
    if (!laterPlaceholder) return;
    const next = tokens[i + 1];
    if (!next || !('lit' in next) || inClass(tok.ph, next.lit[0]!)) {
      problems.push(
        `{${tok.ph}} must be followed by a separator its value cannot contain (such as ; : / or a space), so labels read one way only`,
      );
    }
  });
  return problems;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * Compiles a template into an anchored matcher. `bound` fixes placeholder values (the server binds
 * `pk` to the model's own product key, which never changes once set), turning them into literal text.
 */
export function compileLabelTemplate(
  template: string,
  bound: Partial<Record<LabelPlaceholder, string>> = {},
): CompiledLabelTemplate {
  const tokens: TemplateToken[] = [];
  for (const tok of tokenizeLabelTemplate(template)) {
    const lit = 'ph' in tok ? bound[tok.ph] : tok.lit;
    if (lit === undefined) tokens.push(tok);
    else if (lit.length > 0) {
      const last = tokens[tokens.length - 1];
      if (last && 'lit' in last) tokens[tokens.length - 1] = { lit: last.lit + lit };
      else tokens.push({ lit });
    }
  }
  const names: LabelPlaceholder[] = [];
  const source = tokens
    .map((tok) => {
      if ('lit' in tok) return escapeRe(tok.lit);
      names.push(tok.ph);
      const c = PLACEHOLDER_CLASSES[tok.ph];
      return `([${c.chars}]{1,${c.max}})`;
    })
    .join('');
  const regex = new RegExp(`^${source}$`);
  return {
    template,
    tokens,
    regex,
    match(text: string): LabelTemplateMatch | null {
      const m = regex.exec(text);
      if (!m) return null;
      const out: LabelTemplateMatch = { ...bound };
      names.forEach((n, i) => {
        out[n] = m[i + 1]!;
      });
      return out;
    },
  };
}

/** NFA over a token list: state 2i = before token i (2n = accept), 2i+1 = inside placeholder i. */
type Edge = { ch: string } | { ph: LabelPlaceholder };

function expandLiterals(tokens: TemplateToken[]): Array<{ ch: string } | { ph: LabelPlaceholder }> {
  const out: Array<{ ch: string } | { ph: LabelPlaceholder }> = [];
  for (const t of tokens) {
    if ('lit' in t) for (const ch of t.lit) out.push({ ch });
    else out.push(t);
  }
  return out;
}

function closure(s: number): number[] {
  // Inside a placeholder the state may also end it (move before the next token).
  return s % 2 === 1 ? [s, s + 1] : [s];
}

function moves(units: Array<Edge>, s: number): Array<{ edge: Edge; to: number }> {
  const i = Math.floor(s / 2);
  const u = units[i];
  if (!u) return [];
  if (s % 2 === 1) return 'ph' in u ? [{ edge: u, to: s }] : [];
  return 'ch' in u ? [{ edge: u, to: s + 2 }] : [{ edge: u, to: s + 1 }];
}

function edgesMeet(a: Edge, b: Edge): boolean {
  if ('ch' in a && 'ch' in b) return a.ch === b.ch;
  if ('ch' in a && 'ph' in b) return inClass(b.ph, a.ch);
  if ('ph' in a && 'ch' in b) return inClass(a.ph, b.ch);
  // Every pair of classes shares [0-9A-Za-z].
  return true;
}

/**
 * Whether some text is read by both matchers: an exact intersection of the two patterns, with each
 * placeholder taken as "one or more of its characters" (length limits ignored, so when in doubt the
 * answer is yes). Literal text, including a bound product key, must agree character by character.
 */
export function labelTemplatesOverlap(a: CompiledLabelTemplate, b: CompiledLabelTemplate): boolean {
  const ua = expandLiterals(a.tokens);
  const ub = expandLiterals(b.tokens);
  const acceptA = 2 * ua.length;
  const acceptB = 2 * ub.length;
  const seen = new Set<number>();
  const width = 2 * ub.length + 2;
  const queue: Array<[number, number]> = [[0, 0]];
  seen.add(0);
  while (queue.length > 0) {
    const [sa, sb] = queue.pop()!;
    for (const x of closure(sa)) {
      for (const y of closure(sb)) {
        if (x === acceptA && y === acceptB) return true;
        for (const ma of moves(ua, x)) {
          for (const mb of moves(ub, y)) {
            if (!edgesMeet(ma.edge, mb.edge)) continue;
            const key = ma.to * width + mb.to;
            if (seen.has(key)) continue;
            seen.add(key);
            queue.push([ma.to, mb.to]);
          }
        }
      }
    }
  }
  return false;
}
