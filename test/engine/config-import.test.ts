// How a servable config is imported (engine/config-loader.ts, engine/own-package-hooks.ts):
// `import ... from 'actorserve'` gets the running copy of the package, not a fresh one per
// load, while the config and the modules of its own folder are evaluated afresh each load.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { importConfigModule } from '../../dist/engine/config-loader.js';
import * as actorserve from '../../dist/index.js';
import { servableFixture } from '../helpers/fixtures.js';

// (under the repository, like every fixture: tap's own TypeScript loader, which the test process
// runs with, would compile a .ts file outside an ESM package to CommonJS)
const fx = servableFixture('config-import');
t.teardown(() => fx.remove());
const dir = path.join(fx.dir, 'imported');
fx.config('imported', `import * as actorserve from 'actorserve';
import { scale } from './helper.js';
export const pkg = actorserve;
export const factor: number = scale;
export const evaluatedAt = Symbol('this evaluation');
`);
const config = path.join(dir, 'servable_config.ts');
const helper = (n: number) => writeFileSync(path.join(dir, 'helper.ts'), `export const scale: number = ${n};\n`);

t.test("'actorserve' is the running package, the config's own files are fresh each load", async (t) => {
  helper(2);
  const first = await importConfigModule(config);
  t.equal(first.pkg, actorserve, "the config's 'actorserve' is this very module namespace");
  t.equal(first.factor, 2);

  helper(3); // an edit between loads (a reload of the servable)
  const second = await importConfigModule(config);
  t.not(second.evaluatedAt, first.evaluatedAt, 'the config was evaluated again');
  t.equal(second.factor, 3, 'and so was the module of its own folder it imports');
  t.equal(second.pkg, actorserve, 'the package was not');
});
