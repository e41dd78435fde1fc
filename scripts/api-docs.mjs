// Writes the API reference of docs/api.md from the OpenAPI document (run after the build):
//   npm run build && node scripts/api-docs.mjs
// The text between the reference markers is replaced; the rest of the page is left alone.
// The reference is the whole API as served with accounts on (the discovery operations included).
import { readFileSync, writeFileSync } from 'node:fs';
import { HUB_DISCOVERY_OPERATIONS, LEGACY_OPERATIONS } from '../dist/src/http/api/hub/index.js';
import { openApiDocument } from '../dist/src/http/api/hub/openapi.js';
import { apiReference, REFERENCE_END, REFERENCE_START } from '../dist/src/http/api/hub/reference.js';

const file = new URL('../docs/api.md', import.meta.url);
const text = readFileSync(file, 'utf8');
const start = text.indexOf(REFERENCE_START);
const end = text.indexOf(REFERENCE_END);
if (start < 0 || end < start) {
  console.error('docs/api.md: the reference markers are missing');
  process.exit(1);
}
const reference = apiReference(openApiDocument([...HUB_DISCOVERY_OPERATIONS, ...LEGACY_OPERATIONS], { version: 'docs' }));
writeFileSync(file, text.slice(0, start) + reference + text.slice(end + REFERENCE_END.length));
console.log('docs/api.md: reference rewritten');
