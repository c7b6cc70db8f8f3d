// docs/errors.md lists exactly the codes of engine/errors.ts, with the same statuses.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../../dist/engine/errors.js';
import { ROOT } from '../helpers/fixtures.js';

const doc = readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
const rows = new Map(
  [...doc.matchAll(/^\| `(E_[A-Z_]+)` \| (\d+) \| (\d+) \|/gm)].map((m) => [m[1]!, { http: Number(m[2]), grpc: Number(m[3]) }]),
);

t.test('every code is documented with its statuses', async (t) => {
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    t.same(rows.get(code), { http: info.http, grpc: info.grpc }, code);
  }
});

t.test('the doc lists no code the engine does not have', async (t) => {
  for (const code of rows.keys()) t.ok(Object.hasOwn(ERROR_CODES, code), code);
});
