// MSService/Predict end to end over TCP (127.0.0.1, port 0) and a unix socket: every dtype
// both ways, instance order, versions, MindSpore's error cardinality rules, malformed
// tensors, zero instances, client deadlines, 32 concurrent clients.
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { InstanceErrors, ServingError } from '../../../dist/engine/errors.js';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { type EngineFixture, IDENT_DTYPES, f32, startEngine } from './fixtures/engine.js';
import { RawClient, text, wireF32 } from './fixtures/raw.js';

let fx: EngineFixture;
let tcp: GrpcServer;
let unix: GrpcServer;
const socketPath = path.join(tmpdir(), `asgrpc-${process.pid}-${Date.now()}.sock`);

t.before(async () => {
  fx = await startEngine('grpc-predict', { only: ['add', 'echo', 'ident'] });
  tcp = await startGrpcServer(fx.engine, '127.0.0.1:0');
  unix = await startGrpcServer(fx.engine, `unix:${socketPath}`);
});
t.teardown(async () => {
  await tcp?.close();
  await unix?.close();
  await fx?.stop();
});

/** One tensor of each dtype, with values that expose byte-order, sign and width mistakes. */
const ALL_DTYPES = () => ({
  bool: { dtype: 'bool', shape: [2, 3], data: Uint8Array.of(1, 0, 1, 1, 0, 0) },
  int8: { dtype: 'int8', shape: [2, 3], data: Int8Array.of(-128, -1, 0, 1, 2, 127) },
  int16: { dtype: 'int16', shape: [2, 3], data: Int16Array.of(-32768, -2, 0, 3, 4, 32767) },
  int32: { dtype: 'int32', shape: [3, 2], data: Int32Array.of(-(2 ** 31), -3, 0, 5, 6, 2 ** 31 - 1) },
  int64: { dtype: 'int64', shape: [3], data: BigInt64Array.of(-(2n ** 63n), 0n, 2n ** 63n - 1n) },
  uint8: { dtype: 'uint8', shape: [4], data: Uint8Array.of(0, 1, 128, 255) },
  uint16: { dtype: 'uint16', shape: [2, 2], data: Uint16Array.of(0, 1, 40000, 65535) },
  uint32: { dtype: 'uint32', shape: [2], data: Uint32Array.of(0, 4294967295) },
  uint64: { dtype: 'uint64', shape: [2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) },
  float16: { dtype: 'float16', shape: [4], data: Uint16Array.of(0x3c00, 0xc000, 0x7c00, 0x0001) },
  float32: { dtype: 'float32', shape: [2, 2], data: Float32Array.of(3.2, -0, Infinity, 1e-40) },
  float64: { dtype: 'float64', shape: [], data: Float64Array.of(Math.PI) },
  string: { dtype: 'string', shape: [2], data: [Buffer.from('héllo'), Buffer.from('')] },
  bytes: { dtype: 'bytes', shape: [], data: [Buffer.from([0, 255, 10, 13])] },
});

function plain(data: unknown): unknown {
  if (Array.isArray(data)) return data.map((b: Uint8Array) => Buffer.from(b).toString('hex'));
  return Array.from(data as ArrayLike<unknown>, (v) => (typeof v === 'bigint' ? v.toString() : Object.is(v, -0) ? '-0' : v));
}

const good = (a = 1) => ({ x1: f32([a, 2, 3, 4]), x2: f32([10, 20, 30, 40]) });

for (const kind of ['tcp', 'unix'] as const) {
  const addr = () => (kind === 'tcp' ? tcp.address : unix.address);

  t.test(`${kind}: every dtype round-trips`, async (t) => {
    const client = new Client(addr(), 'echo', 'echo');
    t.teardown(() => client.close());
    for (const [name, x] of Object.entries(ALL_DTYPES())) {
      const [out] = await client.infer([{ x: x as never }]);
      const y = out!.y!;
      t.equal(y.dtype, x.dtype, `${name}: dtype`);
      t.same(y.shape, x.shape, `${name}: shape`);
      t.same(plain(y.data), plain(x.data), `${name}: values`);
      t.ok(Array.isArray(y.data) || y.data.constructor === x.data.constructor, `${name}: typed array kind`);
    }
  });

  t.test(`${kind}: 3 instances in, 3 results out in order`, async (t) => {
    const client = new Client(addr(), 'add', 'add_common', { versionNumber: 1 });
    t.teardown(() => client.close());
    const out = await client.infer([good(1), good(2), good(3)]);
    t.equal(out.length, 3);
    out.forEach((o, i) => t.same([...(o.y!.data as Float32Array)], [11 + i, 22, 33, 44], `instance ${i}`));
  });

  t.test(`${kind}: version 0 is the newest; explicit versions pick theirs`, async (t) => {
    for (const [version, expect] of [[0, [-9, -18, -27, -36]], [1, [11, 22, 33, 44]], [2, [-9, -18, -27, -36]]] as const) {
      const client = new Client(addr(), 'add', 'add_common', { versionNumber: version });
      const [o] = await client.infer(good());
      t.same([...(o!.y!.data as Float32Array)], expect, `version ${version}`);
      client.close();
    }
  });

  t.test(`${kind}: unknown servable, method or version fails the request with its code`, async (t) => {
    const cases: [string, string, number, string, RegExp][] = [
      ['nope', 'add_common', 0, 'E_UNKNOWN_SERVABLE', /servable 'nope' is not loaded/],
      ['add', 'nope', 0, 'E_UNKNOWN_METHOD', /no method "nope"/],
      ['add', 'add_common', 7, 'E_UNKNOWN_VERSION', /no loaded version 7/],
    ];
    for (const [servable, method, version, code, message] of cases) {
      const client = new Client(addr(), servable, method, { versionNumber: version });
      const err = await client.infer([good(), good()]).catch((e: unknown) => e);
      t.ok(err instanceof ServingError, `${code}: a ServingError`);
      t.notOk(err instanceof InstanceErrors, `${code}: a whole-request error`);
      t.match(err, { code, message });
      client.close();
    }
    const raw = new RawClient(addr());
    const { reply, codes } = await raw.predict({ servable_spec: { name: 'nope', method_name: 'm', version_number: 0 }, instances: [{ items: { x: wireF32([1, 2, 3, 4]) } }] });
    t.equal(reply.instances!.length, 0, 'no instances');
    t.equal(reply.error_msg!.length, 1, 'one error');
    t.equal(reply.error_msg![0]!.error_code, 2, 'MindSpore INVALID_INPUTS');
    t.match(text(reply.error_msg![0]!.error_msg), /nope/);
    t.same(codes, ['E_UNKNOWN_SERVABLE']);
    t.same(reply.servable_spec, { name: 'nope', method_name: 'm', version_number: 0 }, 'servable_spec copied verbatim');
    raw.close();
  });

  t.test(`${kind}: malformed tensors fail the whole request with one error`, async (t) => {
    const raw = new RawClient(addr());
    t.teardown(() => raw.close());
    const x2 = wireF32([1, 1, 1, 1]);
    const cases: [string, object, string, RegExp][] = [
      ['data size != shape x dtype size', { dtype: 11, shape: { dims: [2, 2] }, data: Buffer.alloc(12) }, 'E_INVALID_SHAPE', /instance 1, input 'x1': data holds 12 bytes, but shape \[2, 2\] of float32 needs 16/],
      ['negative dim', { dtype: 11, shape: { dims: [-1, 4] }, data: Buffer.alloc(16) }, 'E_INVALID_SHAPE', /invalid dimension -1/],
      ['string tensor with two values', { dtype: 13, shape: { dims: [1] }, bytes_val: [Buffer.from('a'), Buffer.from('b')] }, 'E_INVALID_SHAPE', /needs 1 value in bytes_val, got 2/],
      ['string scalar with two values', { dtype: 13, shape: { dims: [] }, bytes_val: [Buffer.from('a'), Buffer.from('b')] }, 'E_INVALID_SHAPE', /needs 1 value in bytes_val, got 2/],
      ['unknown dtype (MS_UNKNOWN)', { dtype: 0, shape: { dims: [4] }, data: Buffer.alloc(16) }, 'E_INVALID_DTYPE', /unknown data type 0/],
      ['unknown dtype (99)', { dtype: 99, shape: { dims: [4] }, data: Buffer.alloc(16) }, 'E_INVALID_DTYPE', /unknown data type 99/],
      ['numeric values in bytes_val', { dtype: 11, shape: { dims: [] }, bytes_val: [Buffer.alloc(4)] }, 'E_INVALID_ARGUMENT', /not in bytes_val/],
      ['shared-memory tensor', { dtype: 11, shape: { dims: [4] }, shm_data: { memory_key: 'k', bytes_size: 16 } }, 'E_INVALID_ARGUMENT', /shm_data/],
    ];
    for (const [name, x1, code, message] of cases) {
      const { reply, codes } = await raw.predict({
        servable_spec: { name: 'add', method_name: 'add_common' },
        instances: [{ items: { x1: wireF32([1, 2, 3, 4]), x2 } }, { items: { x1: x1, x2 } }],
      });
      t.equal(reply.instances!.length, 0, `${name}: no instances`);
      t.equal(reply.error_msg!.length, 1, `${name}: one error`);
      t.equal(reply.error_msg![0]!.error_code, 2, `${name}: INVALID_INPUTS`);
      t.match(text(reply.error_msg![0]!.error_msg), message, `${name}: message`);
      t.same(codes, [code], `${name}: code trailer`);
    }
    // the server still serves
    const { reply } = await raw.predict({ servable_spec: { name: 'add', method_name: 'add_common', version_number: 1 }, instances: [{ items: { x1: wireF32([1, 2, 3, 4]), x2 } }] });
    t.equal(reply.error_msg!.length, 0);
    t.same([...new Float32Array(Uint8Array.from(reply.instances![0]!.items!['y']!.data!).buffer)], [2, 3, 4, 5]);
  });

  t.test(`${kind}: mixed good and bad instances get one error entry per instance`, async (t) => {
    const bad = { x1: { dtype: 'int32' as const, shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) }, x2: f32([1, 1, 1, 1]) };
    const client = new Client(addr(), 'add', 'add_common', { versionNumber: 1 });
    t.teardown(() => client.close());
    const outs = await client.inferEach([good(1), bad, good(3)]);
    t.same([...((outs[0] as unknown as { y: { data: Float32Array } }).y.data)], [11, 22, 33, 44]);
    t.ok(outs[1] instanceof ServingError, 'instance 1 failed');
    t.equal((outs[1] as ServingError).code, 'E_INVALID_DTYPE');
    t.match((outs[1] as ServingError).message, /takes float32, got int32/);
    t.same([...((outs[2] as unknown as { y: { data: Float32Array } }).y.data)], [13, 22, 33, 44]);
    const err = await client.infer([good(1), bad]).catch((e: unknown) => e);
    t.ok(err instanceof InstanceErrors, 'infer rejects with InstanceErrors');
    t.same((err as InstanceErrors).errors.map((e) => e?.code), [undefined, 'E_INVALID_DTYPE']);

    const raw = new RawClient(addr());
    t.teardown(() => raw.close());
    const x2 = wireF32([1, 1, 1, 1]);
    const badX1 = { dtype: 6, shape: { dims: [2, 2] }, data: Buffer.from(Int32Array.of(1, 2, 3, 4).buffer) };
    const mixed = await raw.predict({
      servable_spec: { name: 'add', method_name: 'add_common', version_number: 1 },
      instances: [{ items: { x1: wireF32([1, 2, 3, 4]), x2 } }, { items: { x1: badX1, x2 } }],
    });
    t.equal(mixed.reply.instances!.length, 2, 'two instances');
    t.same(Object.keys(mixed.reply.instances![1]!.items!), [], 'the failed one is empty');
    t.same(mixed.reply.error_msg!.map((e) => e.error_code), [0, 2], 'codes aligned with instances');
    t.equal(text(mixed.reply.error_msg![0]!.error_msg), '', 'no text for the success');
    t.same(mixed.codes, ['', 'E_INVALID_DTYPE']);
    const allBad = await raw.predict({
      servable_spec: { name: 'add', method_name: 'add_common', version_number: 1 },
      instances: [{ items: { x1: badX1, x2 } }, { items: { x1: badX1, x2 } }],
    });
    t.equal(allBad.reply.instances!.length, 0, 'identical failures collapse: no instances');
    t.equal(allBad.reply.error_msg!.length, 1, 'identical failures collapse: one error');
  });

  t.test(`${kind}: zero instances get an error reply, not silence`, async (t) => {
    const raw = new RawClient(addr());
    t.teardown(() => raw.close());
    const { reply, codes } = await raw.predict({ servable_spec: { name: 'add', method_name: 'add_common' }, instances: [] }, 5000);
    t.equal(reply.error_msg!.length, 1);
    t.not(reply.error_msg![0]!.error_code, 0);
    t.same(codes, ['E_NO_INSTANCES']);
    const client = new Client(addr(), 'add', 'add_common', { timeoutMs: 5000 });
    await t.rejects(client.infer([]), { code: 'E_NO_INSTANCES' });
    client.close();
  });

  t.test(`${kind}: a client deadline shorter than the work ends the call`, async (t) => {
    const client = new Client(addr(), 'add', 'slow', { versionNumber: 1, timeoutMs: 300 });
    t.teardown(() => client.close());
    const t0 = performance.now();
    await t.rejects(client.infer({ x1: f32([2000, 0, 0, 0]), x2: f32([0, 0, 0, 0]) }), { code: 'E_DEADLINE_EXCEEDED' });
    t.ok(performance.now() - t0 < 1500, 'rejected at the deadline, not when the work ended');
    // the deadline also reaches the engine: a request that fits its deadline completes
    const patient = new Client(addr(), 'add', 'slow', { versionNumber: 1, timeoutMs: 10_000 });
    const [o] = await patient.infer({ x1: f32([20, 0, 0, 0]), x2: f32([1, 1, 1, 1]) });
    t.same([...(o!.y!.data as Float32Array)], [21, 1, 1, 1]);
    patient.close();
  });

  t.test(`${kind}: 32 concurrent clients x 50 calls, all correct`, async (t) => {
    const clients = Array.from({ length: 32 }, () => new Client(addr(), 'add', 'add_common', { versionNumber: 1 }));
    t.teardown(() => clients.forEach((c) => c.close()));
    let wrong = 0;
    let done = 0;
    await Promise.all(
      clients.map(async (c, k) => {
        for (let i = 0; i < 50; i++) {
          const a = k * 1000 + i;
          const [o] = await c.infer({ x1: f32([a, a + 1, a + 2, a + 3]), x2: f32([1, 2, 3, 4]) });
          const y = o!.y!.data as Float32Array;
          if (y[0] !== a + 1 || y[1] !== a + 3 || y[2] !== a + 5 || y[3] !== a + 7) wrong++;
          done++;
        }
      }),
    );
    t.equal(done, 1600);
    t.equal(wrong, 0, 'every reply matches its request');
  });
}

t.test('the engine counts these calls under transport="grpc"', async (t) => {
  const text = fx.engine.metrics!.render();
  const count = (transport: string): number => {
    const series = `actorserve_requests_total{servable="add",method="add_common",version="1",transport="${transport}"} `;
    const line = text.split('\n').find((l) => l.startsWith(series));
    return line ? Number(line.slice(series.length)) : 0;
  };
  t.ok(count('grpc') >= 2 * 1600, `${count('grpc')} gRPC requests counted (both listeners ran 1600 concurrent calls)`);
  t.equal(count('engine'), 0, 'none is labelled as an in-process engine call');
});

t.test('x-request-id: the client\'s comes back as a trailer and reaches the access log; the log gets one either way', async (t) => {
  const entries: { requestId: string | undefined; transport: string }[] = [];
  const raw = new RawClient(tcp.address);
  t.teardown(() => {
    fx.engine.requestLog = undefined;
    raw.close();
  });
  const request = { servable_spec: { name: 'add', method_name: 'add_common', version_number: 1 }, instances: [{ items: { x1: wireF32([1, 2, 3, 4]), x2: wireF32([1, 1, 1, 1]) } }] };
  const quiet = await raw.predict(request, 10_000, { 'x-request-id': 'trace-42' });
  t.equal(quiet.requestId, 'trace-42', "the client's id comes back even without an access log");
  t.equal((await raw.predict(request)).requestId, undefined, 'no id is made up when nothing logs it');
  fx.engine.requestLog = (e) => entries.push(e);
  const sent = await raw.predict(request, 10_000, { 'x-request-id': 'trace-43' });
  t.equal(sent.requestId, 'trace-43');
  t.match(entries.at(-1), { requestId: 'trace-43', transport: 'grpc' });
  const made = await raw.predict(request, 10_000, { 'x-request-id': 'x'.repeat(129) });
  t.match(made.requestId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'an id over 128 characters is replaced by a UUID');
  t.equal(entries.at(-1)!.requestId, made.requestId, 'the access log has the same id');
});

t.test('every ONNX dtype through an Identity model, 3 instances batched', async (t) => {
  const all = ALL_DTYPES() as Record<string, { dtype: string; data: ArrayLike<unknown> | Buffer[] }>;
  for (const dtype of IDENT_DTYPES) {
    const client = new Client(tcp.address, 'ident', `id_${dtype}`);
    const base = all[dtype]!;
    const instances = [0, 1, 2].map((k) => {
      if (dtype === 'string') return { x: { dtype, shape: [2], data: [Buffer.from(`s${k}`), Buffer.from('é')] } };
      const src = Array.from(base.data as ArrayLike<unknown>);
      const data = new (base.data as unknown as { constructor: new (n: number) => { [i: number]: unknown } }).constructor(2);
      data[0] = src[k % src.length];
      data[1] = src[(k + 1) % src.length];
      return { x: { dtype, shape: [2], data } };
    });
    const outs = await client.infer(instances as never);
    t.equal(outs.length, 3, `${dtype}: 3 results`);
    outs.forEach((o, k) => {
      t.equal(o.y!.dtype, dtype, `${dtype}[${k}] dtype`);
      t.same(o.y!.shape, [2], `${dtype}[${k}] shape`);
      t.same(plain(o.y!.data), plain(instances[k]!.x.data), `${dtype}[${k}] values`);
    });
    client.close();
  }
});

t.test('convenience inputs become typed tensors', async (t) => {
  const client = new Client(tcp.address, 'echo', 'echo');
  t.teardown(() => client.close());
  const cases: [unknown, string, number[], unknown][] = [
    [2.5, 'float64', [], [2.5]],
    [7n, 'int64', [], ['7']],
    [true, 'bool', [], [1]],
    ['héllo', 'string', [], [Buffer.from('héllo').toString('hex')]],
    [Buffer.from([1, 2]), 'bytes', [], ['0102']],
    [Float32Array.of(1, 2, 3), 'float32', [3], [1, 2, 3]],
    [{ dtype: 'int16', shape: [2, 2], data: [1, 2, 3, 4] }, 'int16', [2, 2], [1, 2, 3, 4]],
    [{ dtype: 'float16', data: [1, -2] }, 'float16', [2], [0x3c00, 0xc000]],
    [{ dtype: 'uint64', shape: [1], data: [5] }, 'uint64', [1], ['5']],
    [{ dtype: 'string', shape: [2], data: ['a', Buffer.from('b')] }, 'string', [2], ['61', '62']],
  ];
  for (const [value, dtype, shape, data] of cases) {
    const [o] = await client.infer({ x: value as never });
    t.equal(o!.y!.dtype, dtype, `${dtype}`);
    t.same(o!.y!.shape, shape, `${dtype} shape`);
    t.same(plain(o!.y!.data), data, `${dtype} data`);
  }
  await t.rejects(client.infer({ x: { dtype: 'float32', shape: [3], data: [1, 2] } as never }), { code: 'E_INVALID_SHAPE' }, 'checked before sending');
  await t.rejects(client.infer({ x: [1, 2] as never }), { code: 'E_INVALID_ARGUMENT', message: /cannot send Array/ });
  await t.rejects(client.infer({ x: { dtype: 'complex64', data: [1] } as never }), { code: 'E_INVALID_DTYPE' });
  t.equal(typeof client.inferAsync, 'function');
  const [a] = await client.inferAsync({ x: 1.5 });
  t.same(plain(a!.y!.data), [1.5], 'inferAsync is infer');
});

t.test('client argument checks', async (t) => {
  t.throws(() => new Client('', 'add', 'm'), { code: 'E_INVALID_ARGUMENT', message: /address must not be empty/ });
  t.throws(() => new Client('127.0.0.1:1', '', 'm'), { message: /servableName must not be empty/ });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { versionNumber: -1 }), { message: /versionNumber must be an integer >= 0/ });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { timeoutMs: 0 }), { message: /timeoutMs/ });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { sslConfig: { certificate: '/x' } }), { message: /together/ });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { maxMsgMbSize: 4096 }), { message: /^Client options: maxMsgMbSize must be a number in \(0, 2047\], got 4096$/ });
  // a typo is refused with the closest key, never silently ignored
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { timeoutMS: 100 } as never), {
    code: 'E_INVALID_ARGUMENT',
    message: "Client options: unknown option 'timeoutMS' (did you mean 'timeoutMs'?)",
  });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { sslConfig: { customCA: '/ca.pem' } } as never), {
    message: "Client options: sslConfig has an unknown key 'customCA' (did you mean 'customCa'?)",
  });
  t.throws(() => new Client('127.0.0.1:1', 'add', 'm', { channelOptions: { 'grpc.keepalive_time_ms': {} } } as never), {
    message: /channelOptions\.grpc\.keepalive_time_ms must be a string or a finite number|channelOptions.*must be a string or a finite number/,
  });
});

t.test('an unreachable server is E_UNAVAILABLE', async (t) => {
  const client = new Client('unix:/nonexistent/asgrpc.sock', 'add', 'add_common', { timeoutMs: 3000 });
  t.teardown(() => client.close());
  const err = await client.infer(good()).catch((e: unknown) => e);
  t.ok(err instanceof ServingError);
  t.match((err as ServingError).code, /E_UNAVAILABLE|E_DEADLINE_EXCEEDED/);
});
