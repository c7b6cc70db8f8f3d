// Requests refused before they run are counted under empty servable/method/version labels
// with their transport (docs/operating.md, "Metrics"): unknown names (counted by the facade's
// lookup), and what each transport refuses itself: unparsable bodies, bad headers, 413 and
// 408 on REST; zero instances and malformed tensors on gRPC.
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';
import { RawClient, wireF32 } from './grpc/fixtures/raw.js';

const fx = servableFixture('refused-metrics');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
const engine = new ServingServer();
engine.log = () => {};
let base = '';
let restPort = 0;
let grpcAddress = '';
t.before(async () => {
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  const rest = await engine.startRestfulServer('127.0.0.1:0', { maxBodyBytes: 4096, bodyTimeoutMs: 200 });
  restPort = rest.port;
  base = `http://127.0.0.1:${rest.port}`;
  grpcAddress = (await engine.startGrpcServer('127.0.0.1:0')).address;
});
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

function value(series: string): number {
  const line = engine.metrics!.render().split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
const total = (transport: string): number => value(`actorserve_requests_total{servable="",method="",version="",transport="${transport}"}`);
const failures = (transport: string, code: string): number =>
  value(`actorserve_request_failures_total{servable="",method="",version="",transport="${transport}",code="${code}"}`);

/** Runs `send`, then checks that exactly one refused request with `code` was counted for `transport`. */
async function countsOne(t: Test, transport: string, code: string, send: () => Promise<unknown>): Promise<void> {
  const before = total(transport);
  const failedBefore = failures(transport, code);
  await send();
  t.equal(total(transport) - before, 1, `${transport} ${code}: one request counted`);
  t.equal(failures(transport, code) - failedBefore, 1, `${transport} ${code}: one failure counted`);
}

const good = JSON.stringify({ instances: { x1: [[1, 1], [1, 1]], x2: [[1, 1], [1, 1]] } });
const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { method: 'POST', body, headers });

/** Sends a request whose body never completes; resolves with the status line the server answers. */
function slowBody(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(restPort, '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d.toString('latin1')));
    socket.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
    socket.write('POST /model/add:add_common HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"instan');
  });
}

t.test('REST: unknown names, unparsable bodies, bad headers, 413 and 408 are counted', async (t) => {
  await countsOne(t, 'rest', 'E_UNKNOWN_SERVABLE', async () => t.equal((await post('/model/nope:add_common', good)).status, 404));
  await countsOne(t, 'rest', 'E_UNKNOWN_METHOD', async () => t.equal((await post('/model/add:nope', good)).status, 404));
  await countsOne(t, 'rest', 'E_UNKNOWN_VERSION', async () => t.equal((await post('/model/add/version/7:add_common', good)).status, 404));
  await countsOne(t, 'rest', 'E_INVALID_ARGUMENT', async () => t.equal((await post('/model/add:add_common', '{"instances": [')).status, 400));
  await countsOne(t, 'rest', 'E_INVALID_ARGUMENT', async () =>
    t.equal((await post('/model/add:add_common', good, { 'x-deadline-ms': 'soon' })).status, 400),
  );
  await countsOne(t, 'rest', 'HTTP_413', async () => t.equal((await post('/model/add:add_common', 'x'.repeat(5000))).status, 413));
  await countsOne(t, 'rest', 'HTTP_408', async () => t.match(await slowBody(), /^HTTP\/1\.1 408/));
  // a request that runs is counted under its servable, not as a refusal
  const before = total('rest');
  t.equal((await post('/model/add:add_common', good)).status, 200);
  t.equal(total('rest'), before);
  t.equal(value('actorserve_requests_total{servable="add",method="add_common",version="1",transport="rest"}'), 1);
});

t.test('gRPC: unknown names, zero instances and malformed tensors are counted', async (t) => {
  const raw = new RawClient(grpcAddress);
  t.teardown(() => raw.close());
  const x2 = wireF32([1, 1, 1, 1]);
  const predict = (name: string, method: string, version: number, instances: object[]) =>
    raw.predict({ servable_spec: { name, method_name: method, version_number: version }, instances });
  await countsOne(t, 'grpc', 'E_UNKNOWN_SERVABLE', async () => t.same((await predict('nope', 'add_common', 0, [{ items: { x1: x2, x2 } }])).codes, ['E_UNKNOWN_SERVABLE']));
  await countsOne(t, 'grpc', 'E_UNKNOWN_METHOD', async () => t.same((await predict('add', 'nope', 0, [{ items: { x1: x2, x2 } }])).codes, ['E_UNKNOWN_METHOD']));
  await countsOne(t, 'grpc', 'E_UNKNOWN_VERSION', async () => t.same((await predict('add', 'add_common', 9, [{ items: { x1: x2, x2 } }])).codes, ['E_UNKNOWN_VERSION']));
  await countsOne(t, 'grpc', 'E_NO_INSTANCES', async () => t.same((await predict('add', 'add_common', 0, [])).codes, ['E_NO_INSTANCES']));
  const short = { dtype: 11, shape: { dims: [2, 2] }, data: Buffer.alloc(12) };
  await countsOne(t, 'grpc', 'E_INVALID_SHAPE', async () => t.same((await predict('add', 'add_common', 0, [{ items: { x1: short, x2 } }])).codes, ['E_INVALID_SHAPE']));
  await countsOne(t, 'grpc', 'E_INVALID_DTYPE', async () =>
    t.same((await predict('add', 'add_common', 0, [{ items: { x1: { dtype: 99, shape: { dims: [4] }, data: Buffer.alloc(16) }, x2 } }])).codes, ['E_INVALID_DTYPE']),
  );
  t.equal(value('actorserve_requests_total{servable="add",method="add_common",version="1",transport="grpc"}'), 0, 'no refusal is counted under the servable');
});
