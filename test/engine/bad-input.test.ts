// Every bad input to the engine API gets a typed, coded error, and the engine keeps serving.
import t, { type Test } from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { InstanceErrors, ServingError } from '../../dist/engine/errors.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('badinput');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));

const engine = new ServingServer();
engine.log = () => {};
t.before(() =>
  engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', maxQueuedRequests: 2, numParallelWorkers: 2 })),
);
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

const good = () => ({ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) });

async function stillServes(t: Test) {
  const [o] = await engine.infer('add', 'add_common', [good()]);
  t.same([...(o!.y!.data as Float32Array)], [2, 3, 4, 5], 'the engine still serves');
}

const requestErrors: [string, () => Promise<unknown>, string, RegExp][] = [
  ['unknown servable', () => engine.infer('nope', 'add_common', [good()]), 'E_UNKNOWN_SERVABLE', /servable 'nope' is not loaded \(loaded: add\)/],
  ['unknown method', () => engine.infer('add', 'nope', [good()]), 'E_UNKNOWN_METHOD', /no method "nope" \(methods: add_common, slow\)/],
  ['unknown version', () => engine.infer('add', 'add_common', [good()], { versionNumber: 9 }), 'E_UNKNOWN_VERSION', /no loaded version 9/],
  ['zero instances', () => engine.infer('add', 'add_common', []), 'E_NO_INSTANCES', /no instances/],
  ['instances not a list', () => engine.infer('add', 'add_common', 'x' as unknown as unknown[]), 'E_NO_INSTANCES', /no instances/],
  ['bad deadline', () => engine.infer('add', 'add_common', [good()], { deadlineMs: -5 }), 'E_INVALID_ARGUMENT', /deadlineMs/],
  ['a mistyped option', () => engine.infer('add', 'add_common', [good()], { deadlineMS: 5 } as never), 'E_INVALID_ARGUMENT', /^infer options: unknown option 'deadlineMS' \(did you mean 'deadlineMs'\?\)$/],
  [
    'a mistyped option of a resolved target',
    () => engine.lookup('add', 'add_common').inferEach([good()], { versionNumber: 1 } as never),
    'E_INVALID_ARGUMENT',
    /^infer options: unknown option 'versionNumber' \(known keys: deadlineMs, signal, sequence, parameters, transport, requestId\)$/,
  ],
];
for (const [name, call, code, message] of requestErrors) {
  t.test(`request error: ${name}`, async (t) => {
    await t.rejects(call(), { code, message });
    const err = await call().catch((e: unknown) => e);
    t.ok(err instanceof ServingError, 'a ServingError');
    await stillServes(t);
  });
}

const instanceErrors: [string, unknown, string, RegExp][] = [
  ['missing input', { x1: f32([1, 2, 3, 4]) }, 'E_MISSING_INPUT', /needs input 'x2'/],
  ['extra input', { ...good(), x3: f32([1, 2, 3, 4]) }, 'E_EXTRA_INPUT', /has no input 'x3'/],
  ['wrong dtype', { ...good(), x2: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) } }, 'E_INVALID_DTYPE', /method input 'x2': .* takes float32, got int32/],
  ['wrong per-instance size', { ...good(), x1: f32([1, 2, 3], [3]) }, 'E_INVALID_SHAPE', /method input 'x1': .* takes 4 elements per instance/],
  ['data length not matching shape', { ...good(), x1: { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } }, 'E_INVALID_SHAPE', /needs 4 elements, data has 3/],
  ['data of the wrong kind for the dtype', { ...good(), x1: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] } }, 'E_INVALID_DTYPE', /needs data in a Float32Array/],
  ['unknown dtype', { ...good(), x1: { dtype: 'complex64', shape: [2, 2], data: new Float32Array(4) } }, 'E_INVALID_DTYPE', /unknown dtype/],
  ['negative dim', { ...good(), x1: { dtype: 'float32', shape: [-2, -2], data: new Float32Array(4) } }, 'E_INVALID_SHAPE', /invalid dimension -2/],
  ['not an object', 42, 'E_INVALID_ARGUMENT', /object of named input tensors/],
];
for (const [name, bad, code, message] of instanceErrors) {
  t.test(`instance error: ${name} fails that instance only`, async (t) => {
    const out = await engine.inferEach('add', 'add_common', [good(), bad, good()]);
    t.notOk(out[0] instanceof ServingError, 'instance 0 ok');
    t.ok(out[1] instanceof ServingError, 'instance 1 failed');
    t.equal((out[1] as ServingError).code, code);
    t.match((out[1] as ServingError).message, message);
    t.notOk(out[2] instanceof ServingError, 'instance 2 ok');
    const err = await engine.infer('add', 'add_common', [good(), bad]).catch((e: unknown) => e);
    t.ok(err instanceof InstanceErrors, 'infer() rejects with InstanceErrors');
    t.equal((err as InstanceErrors).code, code);
    t.same((err as InstanceErrors).errors.map((e) => e?.code), [undefined, code]);
    await stillServes(t);
  });
}

t.test('overload: requests beyond maxQueuedRequests are refused at once', async (t) => {
  const slow = () => engine.infer('add', 'slow', [{ x1: f32([300, 300, 300, 300]), x2: f32([0, 0, 0, 0]) }]);
  const a = slow();
  const b = slow();
  const started = performance.now();
  await t.rejects(slow(), { code: 'E_OVERLOADED', message: /2 requests in flight, the limit is 2/ });
  t.ok(performance.now() - started < 250, 'refused before the slow ones finished');
  await Promise.all([a, b]);
  await stillServes(t);
});

t.test('a deadline that passes answers E_DEADLINE_EXCEEDED', async (t) => {
  await t.rejects(
    engine.infer('add', 'slow', [{ x1: f32([400, 400, 400, 400]), x2: f32([0, 0, 0, 0]) }], { deadlineMs: 50 }),
    { code: 'E_DEADLINE_EXCEEDED', message: /deadline of 50 ms/ },
  );
  t.equal(engine.runtime('add').stats.inflight, 0, 'the expired request left the in-flight count');
  await stillServes(t);
});

t.test('error codes map to HTTP and gRPC statuses', async (t) => {
  t.equal(new ServingError('E_UNKNOWN_SERVABLE', 'x').httpStatus, 404);
  t.equal(new ServingError('E_OVERLOADED', 'x').httpStatus, 503);
  t.equal(new ServingError('E_DEADLINE_EXCEEDED', 'x').grpcStatus, 4);
  const clone = ServingError.fromData(structuredClone(new ServingError('E_INVALID_SHAPE', 'm').toData()));
  t.ok(clone instanceof ServingError);
  t.equal(clone.code, 'E_INVALID_SHAPE');
});

t.test('a cancelled request is answered E_CANCELLED at once and leaves the in-flight count', async (t) => {
  const controller = new AbortController();
  const pending = engine.infer('add', 'slow', [{ x1: f32([300, 300, 300, 300]), x2: f32([0, 0, 0, 0]) }], { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  const started = performance.now();
  await t.rejects(pending, { code: 'E_CANCELLED' });
  t.ok(performance.now() - started < 250, 'answered before the work would have finished');
  t.equal(engine.runtime('add').stats.inflight, 0);
  const aborted = AbortSignal.abort();
  await t.rejects(engine.infer('add', 'add_common', [good()], { signal: aborted }), { code: 'E_CANCELLED' }, 'an already-aborted signal');
  await stillServes(t);
});
