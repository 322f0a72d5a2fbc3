import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateApiTypes, SCHEMA_FILE } from './api-types.js';

writeFileSync(SCHEMA_FILE, await generateApiTypes());
console.log(`wrote ${fileURLToPath(SCHEMA_FILE)}`);
