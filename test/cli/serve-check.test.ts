// `actorserve serve --check`: loads and type-checks the servables, prints what would be served
// and exits 0, or lists every problem and exits 1; it binds no port.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addModel } from '../../dist/servables/example-models.js';
import { runCli as run } from '../helpers/cli.js';

const GOOD = `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export function twice(x: Tensor): Tensor {
  return { dtype: 'float32', shape: x.shape, data: (x.data as Float32Array).map((v) => v * 2) };
}
register.method('add_twice', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(twice, [x1]), x2]));
`;

/** A servable directory under os.tmpdir(): `good`, `mistyped` (a type error), `unexported` (a stage function not exported). */
function servables(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'actorserve-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const configs = {
    good: GOOD,
    mistyped: GOOD.replace('const model =', 'const count: number = "three";\nconst model ='),
    unexported: GOOD.replace('export function twice', 'function twice'),
  };
  for (const [name, source] of Object.entries(configs)) {
    mkdirSync(path.join(dir, name, '1'), { recursive: true });
    writeFileSync(path.join(dir, name, 'servable_config.ts'), source);
    writeFileSync(path.join(dir, name, '1', 'add.onnx'), addModel({ batch: 'N' }));
  }
  return dir;
}

/** A REST address another server holds: serving there would fail, so a clean exit proves nothing was bound. */
async function busyAddress(t: Test): Promise<string> {
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  t.teardown(() => busy.close());
  return `127.0.0.1:${(busy.address() as { port: number }).port}`;
}

t.test('--check on good servables prints their methods and exits 0 without binding a port', async (t) => {
  const dir = servables(t);
  const p = run(['serve', '--check', '--servable-dir', dir, '--servables', 'good', '--rest-address', await busyAddress(t), '--grpc-address', await busyAddress(t)]);
  t.equal(await p.exited, 0, p.output());
  t.match(p.output(), /servable 'good' version 1\n {2}add_twice\(x1, x2\) -> y\n/);
  t.match(p.output(), /check passed: 1 servable loaded and type-checked; nothing was served/);
  t.notMatch(p.output(), /listening/);
});

t.test('--check lists every problem (type errors, load errors) and exits 1', async (t) => {
  const dir = servables(t);
  const p = run(['serve', '--check', '--servable-dir', dir]);
  t.equal(await p.exited, 1);
  const out = p.output();
  t.match(out, /actorserve: --check found 2 problems:/);
  t.match(out, `type error: ${path.join(dir, 'mistyped', 'servable_config.ts')}:2:7: error TS2322: Type 'string' is not assignable to type 'number'.`);
  t.match(out, /servable 'unexported', method 'add_twice', stage 1: function 'twice' must be exported/);
  t.match(out, /servable 'good' version 1\n {2}add_twice/, 'what does load is still listed');
  t.notMatch(out, /check passed/);
});
