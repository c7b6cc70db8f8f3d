// Servable folders as a user keeps them: outside this repository (under the OS temp folder),
// importing 'actorserve' with no node_modules above them; and a config with a syntax error,
// whose message must say where the error is.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { addModel } from '../../dist/servables/example-models.js';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';

/** A servable directory under os.tmpdir() holding the servable `outside` (model + function stage). */
function outsideServables(t: Test, config: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'actorserve-outside-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'outside', '1'), { recursive: true });
  writeFileSync(path.join(dir, 'outside', 'servable_config.ts'), config);
  writeFileSync(path.join(dir, 'outside', '1', 'add.onnx'), addModel({ batch: 'N' }));
  return dir;
}

const CONFIG = `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export function twice(x: Tensor): Tensor {
  return { dtype: 'float32', shape: x.shape, data: (x.data as Float32Array).map((v) => v * 2) };
}
register.method('add_twice', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(twice, [x1]), x2]));
`;

t.test("a servable outside the repository imports 'actorserve' and is served", async (t) => {
  const dir = outsideServables(t, CONFIG);
  const p = run(['serve', '--servable-dir', dir, '--no-grpc', '--rest-address', '127.0.0.1:0']);
  t.teardown(() => {
    p.child.kill('SIGKILL');
  });
  const [, port] = await p.waitFor(REST_LISTENING);
  // non-integers, so that JSON gives float32 (integers would come as int32)
  const body = JSON.stringify({ instances: { x1: [[1.5, 2.5], [3.5, 4.5]], x2: [[0.5, 0.5], [0.5, 0.5]] } });
  const r = await fetch(`http://127.0.0.1:${port}/model/outside:add_twice`, { method: 'POST', body });
  t.equal(r.status, 200);
  t.same(await r.json(), { instances: [{ y: [[3.5, 5.5], [7.5, 9.5]] }] }, 'the model and the function stage both ran');
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0);
});

t.test('a syntax error in servable_config.ts is reported with its file, line and column', async (t) => {
  const broken = CONFIG.replace("shape: x.shape, ", 'shape: x.shape, }');
  const dir = outsideServables(t, broken);
  const p = run(['serve', '--servable-dir', dir, '--no-grpc', '--rest-address', '127.0.0.1:0']);
  t.equal(await p.exited, 1);
  const config = path.join(dir, 'outside', 'servable_config.ts');
  const line = p.output().split('\n').find((l) => l.startsWith('actorserve: '));
  t.equal(line?.slice(0, line.indexOf(':4:')), `actorserve: servable 'outside': ${config} does not compile: ${config}`, 'the first line names the file');
  t.match(line, /servable_config\.ts:4:\d+: ERROR: Expected ";" but found "data"$/, 'and the line, column and error');
});
