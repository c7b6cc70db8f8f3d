// The register API: method tracing into stage graphs and every config error it reports.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { loadErrorDetail } from '../../dist/engine/load-error.js';
import { servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('register');
t.teardown(() => fx.remove());

const HEAD = `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export function f(a: Tensor, b: Tensor) { return [a, b]; }
`;

const bad: [string, string, RegExp][] = [
  ['no method', ``, /declares no method/],
  ['duplicate method', `register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));
register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /declared more than once/],
  ['return count', `register.method('m', { outputs: ['y', 'z'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /returns 1 values but declares 2 outputs/],
  ['non-placeholder argument', `register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, 3 as never]));`, /argument 1 must be a method input or an output of addStage/],
  ['non-placeholder return', `register.method('m', { outputs: ['y'] }, (x1, x2) => 5 as never);`, /returned value 0 must be a method input/],
  ['model input count', `register.method('m', { outputs: ['y'] }, (x1) => register.addStage(model, [x1]));`, /passes 1 inputs, the model takes 2/],
  ['model output count', `register.method('m', { outputs: ['y', 'z'] }, (x1, x2) => register.addStage(model, [x1, x2], { outputsCount: 2 }) as never);`, /declares 2 outputs, the model has 1/],
  ['unexported stage function', `function hidden(a: Tensor) { return a; }
register.method('m', { outputs: ['y'] }, (x1) => register.addStage(hidden, [x1]));`, /function 'hidden' must be exported/],
  ['function arity', `register.method('m', { outputs: ['y'] }, (x1) => register.addStage(f, [x1]));`, /takes 2 arguments but gets 1/],
  ['addStage outside a method', `register.addStage(model, []);`, /only callable inside a method/],
  ['destructured parameters', `register.method('m', { outputs: ['y'] }, (...xs) => xs[0] as never);`, /must be a plain name/],
  ['negative batchSize', `register.method('m', { outputs: ['y', 'z'] }, (x1, x2) => register.addStage(f, [x1, x2], { outputsCount: 2, batchSize: -1 }) as never);`, /batchSize must be an integer >= 0/],
  ['misspelled declareModel option', `register.declareModel({ modelFile: 'b.onnx', maxBatchsize: 8 } as never);`, /servable_config\.ts failed: declareModel: unknown option 'maxBatchsize' \(did you mean 'maxBatchSize'\?\) \(servable_config\.ts:4:\d+\)/],
  ['misspelled method option', `register.method('m', { output: ['y'] } as never, (x1, x2) => register.addStage(model, [x1, x2]));`, /method 'm': unknown option 'output' \(did you mean 'outputs'\?\)/],
  ['misspelled addStage option', `register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2], { outputCount: 1 } as never));`, /method 'm', stage 1: addStage: unknown option 'outputCount' \(did you mean 'outputsCount'\?\)/],
  ['misspelled input key', `register.method('m', { inputs: [{ name: 'x1', dtyp: 'float32' } as never, 'x2'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /method 'm': inputs\[0\] has an unknown key 'dtyp' \(did you mean 'dtype'\?\)/],
  ['unknown input dtype', `register.method('m', { inputs: [{ name: 'x1', dtype: 'float' as never }, 'x2'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /inputs\[0\]\.dtype 'float' is not supported; use 'bool', /],
  ['bad input dim', `register.method('m', { inputs: [{ name: 'x1', shape: [2, -3] }, 'x2'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /inputs\[0\]\.shape\[1\] must be an integer >= -1 or a string/],
  ['input named unlike its parameter', `register.method('m', { inputs: ['a', 'b'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /inputs\[0\] is named 'a' but the function's parameter 0 is 'x1'/],
  ['input count', `register.method('m', { inputs: ['x1'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /the function takes 2 parameters but 1 inputs are declared/],
  ['declared dtype unlike the model', `register.method('m', { inputs: [{ name: 'x1', dtype: 'int32' }, 'x2'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /method 'm' stage 1 \(Model 'add.onnx'\): method input 'x1' is declared int32, but it feeds model input '.*', which takes float32/],
  ['declared shape unlike the model', `register.method('m', { inputs: [{ name: 'x1', shape: [3] }, 'x2'], outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /method input 'x1' is declared with shape \[3\], but it feeds model input '.*', which takes \[2, 2\] per instance/],
  ['misspelled register API name', `(register as unknown as Record<string, () => void>).methd!();`, /register has no 'methd'; did you mean 'method'\? \(servable_config\.ts:4:\d+\)/],
  ['same model file twice', `register.declareModel({ modelFile: 'add.onnx' });`, /already declared/],
  ['unsupported model format', `register.declareModel({ modelFile: 'x.mindir', modelFormat: 'MindIR' });`, /modelFormat 'MindIR' is not served/],
  ['syntax error', `register.method('m', {`, /^servable 'syntax_error': \S+servable_config\.ts does not compile: \S*servable_config\.ts(:\d+:\d+: ERROR: |\(\d+,\d+\): error TS)/],
  ['missing package', `import 'no_such_package';\nregister.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`, /loading \S+ failed: Cannot find (package|module) 'no_such_package'.*; install it in a node_modules folder in or above \S+missing_package$/],
  ['withoutBatchDimInputs out of range', `const m2 = register.declareModel({ modelFile: 'b.onnx', withoutBatchDimInputs: [5] });
register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(m2, [x1, x2]));`, /withoutBatchDimInputs names input 5/],
];

for (const [name, body, message] of bad) {
  t.test(`config error: ${name}`, async (t) => {
    const servable = name.replace(/[^a-z]+/g, '_');
    fx.config(servable, HEAD + body);
    fx.model(servable, 1, 'add.onnx', addModel({ batch: 'N' }));
    fx.model(servable, 1, 'b.onnx', addModel({ batch: 'N' }));
    const engine = new ServingServer();
    engine.log = () => {};
    t.teardown(() => engine.stop());
    const err = await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: servable })).catch((e: unknown) => e);
    t.match(err, { message });
    t.match((err as { code: string }).code, /^E_(CONFIG_INVALID|LOAD_FAILED)$/);
    t.same(engine.describe(), []);
  });
}

t.test('method inputs come from parameter names, or from { inputs }', async (t) => {
  fx.config('names', HEAD + `register.method('by_params', { outputs: ['y'] }, (first: never, second: never) => register.addStage(model, [first, second]));
register.method('by_option', { inputs: [{ name: 'a', dtype: 'float32' }, 'b'], outputs: 'y' }, (a, b) => register.addStage(model, [a, b]));
register.method('async_fn', { outputs: ['y'] }, function (u, v) { return register.addStage(model, [u, v]); });`);
  fx.model('names', 1, 'add.onnx', addModel({ batch: 'N' }));
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'names' }));
  const methods = engine.describe()[0]!.methods;
  t.same(methods.map((m) => [m.name, m.inputs.map((i) => i.name)]), [
    ['by_params', ['first', 'second']],
    ['by_option', ['a', 'b']],
    ['async_fn', ['u', 'v']],
  ]);
});

t.test('ServableStartConfig checks every field', async (t) => {
  const base = { servableDirectory: fx.dir, servableName: 'x' };
  const cases: [object, RegExp][] = [
    [{ ...base, servableDirectory: '' }, /servableDirectory/],
    [{ ...base, deviceIds: [-1] }, /deviceIds must be integers >= 0/],
    [{ ...base, deviceIds: [0, 0] }, /repeats an id/],
    [{ ...base, deviceIds: [] }, /deviceIds/],
    [{ ...base, versionNumber: 1.5 }, /versionNumber/],
    [{ ...base, deviceType: 'ascend' }, /deviceType 'ascend' is not supported/],
    [{ ...base, deviceType: '' }, /deviceType must not be empty/],
    [{ ...base, numParallelWorkers: 65 }, /numParallelWorkers must be an integer in \[0, 64\], got 65/],
    [{ ...base, decKey: new Uint8Array(15) }, /decKey must be 16, 24 or 32 bytes/],
    [{ ...base, decMode: 'AES-ECB' }, /decMode 'AES-ECB' is not supported/],
    [{ ...base, intraOpThreads: 0 }, /intraOpThreads/],
    [{ ...base, maxQueuedRequests: 0 }, /maxQueuedRequests/],
    [{ ...base, defaultDeadlineMs: 0 }, /defaultDeadlineMs/],
  ];
  for (const [options, message] of cases) {
    t.throws(() => new ServableStartConfig(options as never), { code: 'E_INVALID_ARGUMENT', message }, String(message));
  }
  const c = new ServableStartConfig({ ...base, deviceIds: 3, deviceType: 'GPU' });
  t.same([c.deviceIds, c.deviceType, c.versionNumber, c.decMode], [[3], 'cuda', 0, 'AES-GCM']);
});

t.test('startServables merges configs of one version (device ids joined)', async (t) => {
  fx.config('merge', HEAD + `register.method('m', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`);
  fx.model('merge', 1, 'add.onnx', addModel({ batch: 'N' }));
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(() => engine.stop());
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'merge', deviceIds: [0] }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'merge', deviceIds: [1] }),
  ]);
  t.equal(engine.runtime('merge').stats.liveActors, 2);
  await t.rejects(engine.startServables([] as never), { code: 'E_INVALID_ARGUMENT' });
});

t.test('a misspelled register name reads the same when tsx compiles the config to CommonJS', async (t) => {
  // esbuild names the import `import_actorserve` in CommonJS output; the message must not show it.
  const configPath = '/srv/servables/add/servable_config.ts';
  const err = new TypeError('import_actorserve.register.declareModle is not a function');
  err.stack = `TypeError: ${err.message}\n    at Object.<anonymous> (${configPath}?namespace=1234:7:22)\n    at Module._compile (node:internal/modules/cjs/loader:1554:14)`;
  t.equal(loadErrorDetail(err, configPath), "register has no 'declareModle'; did you mean 'declareModel'? (servable_config.ts:7:22)");
  t.equal(loadErrorDetail(new TypeError('register.zzzzzzzzz is not a function'), configPath), "register has no 'zzzzzzzzz' (a servable config declares with declareModel, method and addStage)");
  t.equal(loadErrorDetail(new Error('something else'), configPath), 'something else');
});
