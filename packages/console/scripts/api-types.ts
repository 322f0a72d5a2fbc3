import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { sqliteBackend } from '../../server/src/testing/backends.js';
import { startHarness } from '../../server/src/testing/harness.js';

/** Where the console's API types live; `npm run gen:api -w packages/console` rewrites it. */
export const SCHEMA_FILE = new URL('../src/api/schema.d.ts', import.meta.url);

/** The server's /openapi.json as a real app serves it (SQLite, nothing listening). */
export async function serverOpenApi(): Promise<Record<string, unknown>> {
  const h = await startHarness(sqliteBackend);
  try {
    const r = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    if (r.statusCode !== 200) throw new Error(`/openapi.json answered ${r.statusCode}`);
    return r.json();
  } finally {
    await h.close();
  }
}

/** The console's API types, generated from the server's OpenAPI document by openapi-typescript. */
export async function generateApiTypes(doc?: Record<string, unknown>): Promise<string> {
  const ast = await openapiTS((doc ?? (await serverOpenApi())) as never, { alphabetize: true });
  return `${COMMENT_HEADER}// Generated from the server's /openapi.json: run \`npm run gen:api -w packages/console\`.\n\n${astToString(ast)}`;
}
