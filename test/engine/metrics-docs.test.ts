// docs/operating.md documents exactly the metrics the server exposes.
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ServingServer } from '../../dist/server.js';
import { ROOT } from '../helpers/fixtures.js';

t.test('every exposed metric is in the reference table, and nothing else is', async (t) => {
  const exposed = new Set([...new ServingServer().metrics!.render().matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`));
  const doc = readFileSync(path.join(ROOT, 'docs', 'operating.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `((?:actorserve|process|nodejs)_[a-z0-9_]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => `${m[1]} ${m[2]}`));
  t.same([...documented].sort(), [...exposed].sort());
});
