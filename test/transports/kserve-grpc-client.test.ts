// The TS client's KServe v2 path (`KServeClient`, `client.v2` from 'actorserve/client') and
// `actorserve infer --protocol kserve`, against a real gRPC server.
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { runInferCommand } from '../../dist/transports/grpc/infer-cli.js';
import { Client, KServeClient, ServingError, stringTensor, tensorStrings } from 'actorserve/client';
import { type EngineFixture, f32, startEngine } from './grpc/fixtures/engine.js';

let fx: EngineFixture;
let server: GrpcServer;
let v2: KServeClient;

t.before(async () => {
  fx = await startEngine('kserve-grpc-client', { only: ['add', 'echo', 'ident'] });
  server = await startGrpcServer(fx.engine, '127.0.0.1:0');
  v2 = new KServeClient(server.address, { timeoutMs: 30_000 });
});
t.teardown(async () => {
  v2?.close();
  await server?.close();
  await fx?.stop();
});

const batch = (values: number[]) => f32(values, [values.length / 4, 2, 2]);

t.test('health and metadata', async (t) => {
  t.equal(await v2.serverLive(), true);
  t.equal(await v2.serverReady(), true);
  t.match(await v2.serverMetadata(), { name: 'actorserve', extensions: [] });
  t.equal(await v2.modelReady('add'), true);
  t.equal(await v2.modelReady('add', 1), true);
  await t.rejects(v2.modelReady('add', 9), { code: 'E_UNKNOWN_VERSION' });
  const m = await v2.modelMetadata('add.add_common', '1');
  t.same(m.versions, ['1', '2']);
  t.same(m.inputs, [
    { name: 'x1', datatype: 'FP32', shape: [-1, 2, 2] },
    { name: 'x2', datatype: 'FP32', shape: [-1, 2, 2] },
  ]);
  t.match(m.properties, { servable: 'add', method: 'add_common', version: '1' });
  await t.rejects(v2.modelMetadata('nope'), { name: 'ServingError', code: 'E_UNKNOWN_SERVABLE' });
});

t.test('infer: raw (default) and typed, id, versions, outputs, parameters', async (t) => {
  const inputs = { x1: batch([1, 2, 3, 4, 5, 6, 7, 8]), x2: batch([10, 20, 30, 40, 50, 60, 70, 80]) };
  for (const contents of ['raw', 'typed'] as const) {
    const r = await v2.infer('add', inputs, { version: 1, id: `id-${contents}`, contents, outputs: ['y'], parameters: { p: 'q', n: 3 } });
    t.equal(r.modelName, 'add');
    t.equal(r.modelVersion, '1');
    t.equal(r.id, `id-${contents}`);
    t.same(r.outputs['y']!.shape, [2, 2, 2]);
    t.same([...(r.outputs['y']!.data as Float32Array)], [11, 22, 33, 44, 55, 66, 77, 88], contents);
    t.same(r.parameters, { p: 'q', n: 3 }, `${contents}: parameters echoed`);
  }
  const newest = await v2.infer('add', inputs);
  t.equal(newest.modelVersion, '2');
  t.equal(newest.id, '');
});

t.test('every dtype the client can send, raw and typed (FP16 raw only)', async (t) => {
  const values: Record<string, { dtype: string; shape: number[]; data: unknown }> = {
    bool: { dtype: 'bool', shape: [1, 2], data: Uint8Array.of(1, 0) },
    int8: { dtype: 'int8', shape: [1, 2], data: Int8Array.of(-128, 127) },
    int16: { dtype: 'int16', shape: [1, 2], data: Int16Array.of(-32768, 32767) },
    int32: { dtype: 'int32', shape: [1, 2], data: Int32Array.of(-(2 ** 31), 2 ** 31 - 1) },
    int64: { dtype: 'int64', shape: [1, 2], data: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n) },
    uint8: { dtype: 'uint8', shape: [1, 2], data: Uint8Array.of(0, 255) },
    uint16: { dtype: 'uint16', shape: [1, 2], data: Uint16Array.of(0, 65535) },
    uint32: { dtype: 'uint32', shape: [1, 2], data: Uint32Array.of(0, 2 ** 32 - 1) },
    uint64: { dtype: 'uint64', shape: [1, 2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) },
    float16: { dtype: 'float16', shape: [1, 2], data: Uint16Array.of(0x3c00, 0xfbff) },
    float32: { dtype: 'float32', shape: [1, 2], data: Float32Array.of(0.1, -3e38) },
    float64: { dtype: 'float64', shape: [1, 2], data: Float64Array.of(0.1, -1e308) },
  };
  for (const [dtype, x] of Object.entries(values)) {
    const raw = await v2.infer(`ident.id_${dtype}`, { x: x as never });
    t.equal(raw.outputs['y']!.dtype, dtype, `${dtype} raw: dtype`);
    t.same([...(raw.outputs['y']!.data as ArrayLike<unknown> as unknown[])], [...(x.data as unknown[])], `${dtype} raw: values`);
    if (dtype === 'float16') {
      await t.rejects(v2.infer('ident.id_float16', { x: x as never }, { contents: 'typed' }), { code: 'E_INVALID_DTYPE', message: /FP16 has no typed contents/ });
      continue;
    }
    const typed = await v2.infer(`ident.id_${dtype}`, { x: x as never }, { contents: 'typed' });
    t.same([...(typed.outputs['y']!.data as ArrayLike<unknown> as unknown[])], [...(x.data as unknown[])], `${dtype} typed: values`);
  }
  const s = await v2.infer('ident.id_string', { x: { ...stringTensor(['a', 'bé']), shape: [1, 2] } }, { contents: 'typed' });
  t.equal(s.outputs['y']!.dtype, 'bytes', 'BYTES outputs are bytes tensors');
  t.same(tensorStrings(s.outputs['y']!), ['a', 'bé']);
});

t.test('errors are ServingErrors with the server code', async (t) => {
  await t.rejects(v2.infer('nope', { x: 1 }), { code: 'E_UNKNOWN_SERVABLE' });
  await t.rejects(v2.infer('add', { x1: batch([1, 2, 3, 4]) }), { code: 'E_MISSING_INPUT' });
  await t.rejects(v2.infer('add', { x1: batch([1, 2, 3, 4]), x2: batch([1, 2, 3, 4]) }, { outputs: ['z'] }), { code: /E_INVALID/ });
  await t.rejects(v2.infer('', { x: 1 }), { code: 'E_INVALID_ARGUMENT', message: /model must not be empty/ });
  const err = await v2.infer('add', { x1: batch([1, 2, 3, 4]), x2: { dtype: 'int32', shape: [1, 2, 2], data: [1, 2, 3, 4] } }).catch((e: unknown) => e);
  t.ok(err instanceof ServingError);
  t.match(err, { code: 'E_INVALID_DTYPE' });
  t.equal(await v2.serverLive(), true, 'the server is live afterwards');
});

t.test('client.v2 speaks KServe v2 on the Client channel', async (t) => {
  const client = new Client(server.address, 'add', 'add_common', { versionNumber: 1 });
  const ms = await client.infer({ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) });
  const r = await client.v2.infer('add.add_common', { x1: batch([1, 2, 3, 4]), x2: batch([1, 1, 1, 1]) }, { version: 1 });
  t.same([...(r.outputs['y']!.data as Float32Array)], [...(ms[0]!.y!.data as Float32Array)], 'the same answer as MSService/Predict');
  t.equal(client.v2, client.v2, 'one v2 client per Client');
  client.v2.close(); // leaves the channel to the Client
  t.equal(await client.v2.serverLive(), true);
  client.close();
  await t.rejects(client.v2.serverLive(), { code: 'E_UNAVAILABLE' }, 'closed with the Client');
});

async function infer(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runInferCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

t.test('actorserve infer --protocol kserve', async (t) => {
  const r = await infer(server.address, 'add', 'add_common', '--protocol', 'kserve', '--version', '1', '-i', 'x1=[[[1, 2], [3, 4]]]', '-i', 'x2=[[[1, 1], [1, 1]]]');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '{"model_name":"add.add_common","model_version":"1","outputs":[{"name":"y","datatype":"FP32","shape":[1,2,2],"data":[2.0,3.0,4.0,5.0]}]}\n', 'integers sent as the model datatype (FP32), a v2 JSON reply');
  const ints = await infer(server.address, 'ident', 'id_int64', '--protocol', 'kserve', '-i', 'x=[[5, -1]]');
  t.equal(ints.code, 0, ints.stderr);
  t.match(ints.stdout, /"datatype":"INT64","shape":\[1,2\],"data":\[5,-1\]/, "untyped integers sent as INT64, the model datatype");
  const bad = await infer(server.address, 'nope', 'm', '--protocol', 'kserve', '-i', 'x=1');
  t.equal(bad.code, 1);
  t.match(JSON.parse(bad.stdout), { error_code: 'E_UNKNOWN_SERVABLE' });
  const usage = await infer(server.address, 'add', 'add_common', '--protocol', 'v3', '-i', 'x=1');
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--protocol takes mindspore or kserve/);
  const help = await infer('--help');
  t.match(help.stdout, /--protocol P\s+mindspore \(default/);
});
