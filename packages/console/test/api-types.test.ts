import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateApiTypes, SCHEMA_FILE } from '../scripts/api-types.js';

/** The console's API types are generated from the server; when a route changes they must be regenerated. */
describe('console API types', () => {
  it('src/api/schema.d.ts is what the server’s /openapi.json generates (else: npm run gen:api -w packages/console)', async () => {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    const fresh = await generateApiTypes();
    // Compare line by line so a failure names the first drifted operation rather than a 5 000-line blob.
    const a = committed.split('\n');
    const b = fresh.split('\n');
    const first = b.findIndex((line, i) => line !== a[i]);
    expect(first === -1 && a.length === b.length ? 'in sync' : `differs from line ${first + 1}: ${b[first] ?? '(end)'}`).toBe(
      'in sync',
    );
  });
});
