import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { WsErr } from '@bindery/protocol';
import { describe, expect, it } from 'vitest';

/** docs/protocol.md is the contract: every rule the code cites is defined there, and every code is listed. */
const root = path.resolve(__dirname, '../../../../..');
const doc = readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
const RULE = /P-[A-Z]+(?:-[a-z_]+)?-\d+/g;

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|tsx)$/.test(name)) yield p;
  }
}

describe('docs/protocol.md', () => {
  const defined = new Set([...doc.matchAll(/\*\*(P-[A-Z]+(?:-[a-z_]+)?-\d+)/g)].map((m) => m[1]!));

  it('defines each rule once', () => {
    const all = [...doc.matchAll(/\*\*(P-[A-Z]+(?:-[a-z_]+)?-\d+)/g)].map((m) => m[1]!);
    expect(all.length).toBe(defined.size);
    expect(defined.size).toBeGreaterThan(60);
  });

  it('defines every rule the code cites', () => {
    const missing: string[] = [];
    for (const file of sources(path.join(root, 'packages'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(RULE)) {
        if (!defined.has(m[0])) missing.push(`${path.relative(root, file)}: ${m[0]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('lists every gateway error code with its name', () => {
    for (const [name, code] of Object.entries(WsErr)) {
      expect(doc, name).toMatch(new RegExp(`\\| ${code} \\| \`${name}\` \\|`));
    }
  });
});
