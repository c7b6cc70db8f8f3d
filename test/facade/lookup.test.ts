/**
 * The facade resolves a request's target once: a REST request and a gRPC request each make one
 * `lookup`, which resolves the runtime (servable and version) once; refusals are counted under
 * the transport that received them.
 */
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, f32, servableFixture } from '../helpers/fixtures.js';
import { request } from '../transports/rest/fixtures/rest.js';

const fx = servableFixture('facade-lookup');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.model('add', 2, 'add.onnx', addModel({ batch: 'N' }));
const server = new ServingServer();
server.log = () => {};
await server.startServables([
  new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', versionNumber: 1 }),
  new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', versionNumber: 2 }),
]);
const rest = await server.startRestfulServer('127.0.0.1:0');
const grpc = await server.startGrpcServer('127.0.0.1:0');
t.teardown(async () => {
  await server.stop();
  fx.remove();
});

/** Counts calls of `lookup` and `runtime` on this server while `fn` runs. */
async function counting(fn: () => Promise<unknown>): Promise<{ lookups: string[]; runtimes: number }> {
  const lookups: string[] = [];
  let runtimes = 0;
  const lookup = server.lookup.bind(server);
  const runtime = server.runtime.bind(server);
  // Own properties shadow the prototype's methods while `fn` runs; every internal call goes through them.
  server.lookup = (...args) => {
    lookups.push(`${args[0]}:${args[1]}@${args[2] ?? 0}`);
    return lookup(...args);
  };
  server.runtime = (...args) => {
    runtimes++;
    return runtime(...args);
  };
  try {
    await fn();
  } finally {
    Reflect.deleteProperty(server, 'lookup');
    Reflect.deleteProperty(server, 'runtime');
  }
  return { lookups, runtimes };
}

const body = JSON.stringify({ instances: [{ x1: [[1, 2], [3, 4]], x2: [[1, 1], [1, 1]] }] });

t.test('a REST request resolves its target once', async (t) => {
  const seen = await counting(async () => {
    const r = await request({ port: rest.port }, '/model/add/version/1:add_common', { method: 'POST', body });
    t.equal(r.status, 200);
    t.same(r.json, { instances: [{ y: [[2, 3], [4, 5]] }] });
  });
  t.same(seen.lookups, ['add:add_common@1'], 'one lookup, with the version from the URL');
  t.equal(seen.runtimes, 1, 'servable and version resolved once');
});

t.test('a gRPC request resolves its target once', async (t) => {
  const client = new Client(grpc.address, 'add', 'add_common', { versionNumber: 2 });
  t.teardown(() => client.close());
  const seen = await counting(async () => {
    const [out] = await client.infer([{ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) }]);
    t.same(Array.from(out!.y!.data as Float32Array), [2, 3, 4, 5]);
  });
  t.same(seen.lookups, ['add:add_common@2'], 'one lookup, with the version from the request');
  t.equal(seen.runtimes, 1, 'servable and version resolved once');
});

t.test('the engine API resolves once too, and a target keeps the version it resolved', async (t) => {
  const seen = await counting(() => server.infer('add', 'add_common', [{ x1: f32([1, 1, 1, 1]), x2: f32([1, 1, 1, 1]) }]));
  t.equal(seen.runtimes, 1, 'servable and version resolved once (inside the facade, without the public lookup)');
  const target = server.lookup('add', 'add_common');
  t.equal(target.version, 2, 'version 0 is the newest loaded');
  const batchedF32 = { dtype: 'float32', dims: [2, 2], batched: true };
  t.same(target.info, {
    name: 'add_common',
    inputs: [{ name: 'x1', dtype: 'float32', dims: ['N', 2, 2] }, { name: 'x2', dtype: 'float32', dims: ['N', 2, 2] }],
    outputs: ['y'],
    layout: { batched: true, inputs: [batchedF32, batchedF32], outputs: [batchedF32] },
  });
  t.equal(server.lookup('add', 'add_common'), target, 'resolved targets are reused');
});

t.test('unknown targets: one error each, counted under the transport that received them', async (t) => {
  t.throws(() => server.lookup('nope', 'add_common'), { code: 'E_UNKNOWN_SERVABLE', message: /servable 'nope' is not loaded \(loaded: add\)/ });
  t.throws(() => server.lookup('add', 'nope'), { code: 'E_UNKNOWN_METHOD', message: /no method "nope" \(methods: add_common, slow\)/ });
  t.throws(() => server.lookup('add', 'add_common', 7), { code: 'E_UNKNOWN_VERSION', message: /no loaded version 7 \(loaded: 1, 2\)/ });
  const failures = (): number => {
    const m = server.metrics!.render().match(/^actorserve_request_failures_total\{servable="",method="",version="",transport="rest",code="E_UNKNOWN_METHOD"\} (\d+)$/m);
    return m ? Number(m[1]) : 0;
  };
  const before = failures();
  const r = await request({ port: rest.port }, '/model/add:nope', { method: 'POST', body });
  t.equal(r.status, 404);
  t.equal(failures(), before + 1, 'the REST 404 is counted under transport="rest"');
});
