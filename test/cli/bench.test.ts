// `actorserve bench`: load against a real actorserve REST server (and its gRPC transport)
// started in this process, the JSON and table outputs, failures classified by kind, an
// unreachable target (exit 1, one line), bad flags (exit 2), and the pieces underneath (the raw
// HTTP/1.1 client on chunked and closing replies, the latency histogram).
import t from 'tap';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import type { ServingServer } from '../../dist/server.js';
import { parseDuration } from '../../dist/cli/bench.js';
import { Histogram } from '../../dist/cli/bench-histogram.js';
import { HttpConnection, encodeRequest } from '../../dist/cli/bench-http.js';
import { streamMessage } from '../../dist/cli/bench-grpc.js';
import { startGrpcServer, type GrpcServer } from '../../dist/transports/grpc/server.js';
import { protos } from '../../dist/transports/grpc/proto.js';
import { type Level, addEngine, bench } from '../helpers/bench.js';

let engine: ServingServer;
let restAddress = '';
let grpc: GrpcServer;

t.before(async () => {
  engine = await addEngine();
  restAddress = (await engine.startRestfulServer('127.0.0.1:0')).address;
  grpc = await startGrpcServer(engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await grpc?.close();
  await engine?.stop();
});

t.test('REST --requests 200 --concurrency 1,4 --json: one row per level, 200 requests each, no errors', async (t) => {
  const r = await bench([restAddress, '--servable', 'add', '--method', 'add_common', '--requests', '200', '--concurrency', '1,4', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '', 'no progress line when stderr is not a TTY');
  const doc = JSON.parse(r.stdout) as { levels: Level[]; instancesPerRequest: number; protocol: string; target: string };
  t.equal(doc.protocol, 'rest');
  t.equal(doc.target, `http://${restAddress}`);
  t.equal(doc.instancesPerRequest, 1);
  t.same(doc.levels.map((l) => l.concurrency), [1, 4]);
  for (const l of doc.levels) {
    t.equal(l.requests, 200, `c=${l.concurrency}: 200 requests`);
    t.equal(l.ok, 200);
    t.equal(l.errors, 0);
    t.same(l.errorsByKind, {});
    t.ok(l.requestsPerSecond > 0 && l.instancesPerSecond === l.requestsPerSecond);
    t.ok(l.latencyMs.min <= l.latencyMs.p50 && l.latencyMs.p50 <= l.latencyMs.p90 && l.latencyMs.p90 <= l.latencyMs.p99 && l.latencyMs.p99 <= l.latencyMs.max, 'percentiles are ordered');
  }
});

t.test('the table: a header, one row per level; --input with several instances counts instances/s', async (t) => {
  const input = path.join(tmpdir(), `bench-input-${process.pid}.json`);
  const x = [[1.5, 2], [3, 4]];
  writeFileSync(input, JSON.stringify({ instances: [{ x1: x, x2: x }, { x1: x, x2: x }, { x1: x, x2: x }] }));
  const r = await bench([`http://${restAddress}/ignored/path`, '--servable', 'add', '--method', 'add_common', '--input', input, '--requests', '30', '--concurrency', '2', '--workers', '2'], true);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /3 instance\(s\) per request/);
  const lines = r.stdout.trim().split('\n');
  t.match(lines[1], /^concurrency\s+requests\s+req\/s\s+inst\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+max ms\s+errors\s+gen CPU µs\/req$/);
  const cells = lines[2]!.trim().split(/\s+/);
  t.equal(cells[0], '2');
  t.equal(cells[1], '30');
  t.equal(cells[8], '0');
  t.ok(Number(cells[9]) > 0, 'the js generator\'s CPU per request');
  t.ok(Math.abs(Number(cells[3]) - 3 * Number(cells[2])) <= 0.02 * Number(cells[3]) + 1, 'inst/s = 3 × req/s');
  const msgpack = await bench([restAddress, '--servable', 'add', '--method', 'add_common', '--msgpack', '--requests', '20', '--concurrency', '2', '--json']);
  t.equal(msgpack.code, 0, msgpack.stderr);
  t.equal((JSON.parse(msgpack.stdout) as { levels: Level[] }).levels[0]!.ok, 20, 'msgpack bodies work');
});

t.test('duration mode with warm-up (js generator); gRPC unary, PredictStream and KServe v2 ModelInfer against the gRPC transport', async (t) => {
  const d = await bench([restAddress, '--servable', 'add', '--method', 'add_common', '--duration', '300ms', '--warmup', '100ms', '--concurrency', '3', '--generator', 'js', '--json']);
  t.equal(d.code, 0, d.stderr);
  const level = (JSON.parse(d.stdout) as { levels: (Level & { seconds: number })[] }).levels[0]!;
  t.ok(level.ok > 0 && level.errors === 0);
  t.ok(Math.abs(level.seconds - 0.3) < 0.01, `measured over the window (${level.seconds} s)`);
  for (const protocol of ['grpc', 'grpc-stream', 'kserve']) {
    const r = await bench([`127.0.0.1:${grpc.port}`, '--protocol', protocol, '--servable', 'add', '--method', 'add_common', '--requests', '100', '--concurrency', '1,8', '--json']);
    t.equal(r.code, 0, `${protocol}: ${r.stderr}`);
    const doc = JSON.parse(r.stdout) as { levels: Level[] };
    t.same(doc.levels.map((l) => [l.concurrency, l.requests, l.ok, l.errors]), [[1, 100, 100, 0], [8, 100, 100, 0]], protocol);
  }
});

t.test('failures are counted by kind, with a sample message', async (t) => {
  // inputs the model refuses: the preflight request fails as a whole (exit 1, the reason)
  const bad = path.join(tmpdir(), `bench-bad-${process.pid}.json`);
  writeFileSync(bad, JSON.stringify({ instances: { x1: [1, 2, 3], x2: [1, 2, 3] } }));
  let r = await bench([restAddress, '--servable', 'add', '--method', 'add_common', '--input', bad, '--requests', '5', '--concurrency', '1']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^actorserve bench: http:\/\/127\.0\.0\.1:\d+\/model\/add:add_common: (HTTP 400|instance error): .+\n$/);
  const addBody = path.join(tmpdir(), `bench-add-${process.pid}.json`);
  writeFileSync(addBody, '{"instances":{"x1":[[1.0, 1.0], [1.0, 1.0]], "x2":[[1.0, 1.0], [1.0, 1.0]]}}');
  r = await bench([restAddress, '--servable', 'nope', '--method', 'add_common', '--input', addBody, '--requests', '5']);
  t.equal(r.code, 1);
  t.match(r.stderr, /HTTP 404: .*nope/);
  r = await bench([`127.0.0.1:${grpc.port}`, '--protocol', 'grpc', '--servable', 'nope', '--method', 'add_common', '--input', addBody, '--requests', '5']);
  t.equal(r.code, 1);
  t.match(r.stderr, /MSService\/Predict\): E_UNKNOWN_SERVABLE/);
  r = await bench([`127.0.0.1:${grpc.port}`, '--protocol', 'kserve', '--servable', 'nope', '--method', 'add_common', '--input', addBody, '--requests', '5']);
  t.equal(r.code, 1);
  t.match(r.stderr, /GRPCInferenceService\/ModelInfer\): E_UNKNOWN_SERVABLE: .*nope/);

  // a server that fails every third request mid-run: the run completes and reports them
  let n = 0;
  const flaky = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      if (n > 1 && n % 3 === 0) res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_msg":"busy, try later"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"instances":[{"y":[[2.0,2.0],[2.0,2.0]]}]}');
    });
  });
  await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
  t.teardown(() => flaky.close());
  const port = (flaky.address() as { port: number }).port;
  r = await bench([`127.0.0.1:${port}`, '--servable', 'add', '--method', 'add_common', '--requests', '60', '--concurrency', '1', '--json']);
  t.equal(r.code, 0, 'some requests succeeded: exit 0');
  const l = (JSON.parse(r.stdout) as { levels: Level[] }).levels[0]!;
  t.equal(l.requests, 60);
  t.equal(l.errors, 20);
  t.equal(l.ok, 40);
  t.same(l.errorsByKind, { 'HTTP 503': 20 });
  t.equal(l.errorSamples['HTTP 503'], 'busy, try later');
  r = await bench([`127.0.0.1:${port}`, '--servable', 'add', '--method', 'add_common', '--requests', '6', '--concurrency', '1']);
  t.match(r.stdout, /c=1: 2 × HTTP 503 \(e\.g\. busy, try later\)/, 'the table lists errors by kind');
});

t.test('an unreachable target: exit 1 and a one-line reason', async (t) => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise((resolve) => closed.close(resolve));
  for (const protocol of ['rest', 'grpc', 'grpc-stream']) {
    const r = await bench([`127.0.0.1:${port}`, '--protocol', protocol, '--servable', 'add', '--method', 'add_common', '--requests', '10']);
    t.equal(r.code, 1, protocol);
    t.equal(r.stdout, '');
    t.match(r.stderr, /^actorserve bench: cannot reach \S+ .*connection refused.*\n$/, `${protocol}: ${r.stderr}`);
    t.equal(r.stderr.split('\n').length, 2, 'one line');
  }
  const r = await bench([`unix:${path.join(tmpdir(), `no-such-${process.pid}.sock`)}`, '--servable', 'add', '--method', 'add_common']);
  t.equal(r.code, 1);
  t.match(r.stderr, /cannot reach unix:.*no such socket/);
});

t.test('bad flags exit 2 with a reason and a pointer to --help', async (t) => {
  const base = ['127.0.0.1:1500', '--servable', 'add', '--method', 'add_common'];
  const cases: [string[], RegExp][] = [
    [['--servable', 'add', '--method', 'add_common'], /needs a target/],
    [['127.0.0.1:1500', '--method', 'add_common'], /--servable is required/],
    [['127.0.0.1:1500', '--servable', 'add'], /--method is required/],
    [[...base, '--concurrency', '0'], /--concurrency takes integers/],
    [[...base, '--concurrency', '1,x'], /--concurrency takes integers/],
    [[...base, '--duration', 'soon'], /--duration takes a duration/],
    [[...base, '--duration', '1s', '--requests', '5'], /not both/],
    [[...base, '--requests=-3'], /--requests takes an integer >= 1/],
    [[...base, '--requests', '2.5'], /--requests takes an integer >= 1/],
    [[...base, '--protocol', 'udp'], /--protocol takes rest, grpc, grpc-stream/],
    [[...base, '--workers', '0'], /--workers takes an integer >= 1/],
    [[...base, '--msgpack', '--protocol', 'grpc'], /--msgpack is for --protocol rest/],
    [[...base, '--dtype', 'string', '--protocol', 'grpc'], /--dtype takes a numeric dtype/],
    [[...base, '--http-client', 'curl'], /--http-client takes raw or node/],
    [[...base, '--frobnicate'], /Unknown option '--frobnicate'/],
    [[...base, '--concurency', '8'], /Unknown option '--concurency' \(did you mean '--concurrency'\?\)/],
    [['127.0.0.1:1500', '--servable', 'resnet', '--method', 'classify_top1'], /--input is required for resnet\/classify_top1/],
    [[...base, '--input', '/no/such/file.json'], /cannot read --input/],
    [['https://127.0.0.1:1500', '--servable', 'add', '--method', 'add_common'], /TLS targets/],
    [['127.0.0.1:99999', '--servable', 'add', '--method', 'add_common'], /bad port/],
  ];
  for (const [args, message] of cases) {
    const r = await bench(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message);
    t.match(r.stderr, /Run "actorserve bench --help" for usage\./);
  }
  const bad = path.join(tmpdir(), `bench-notjson-${process.pid}.json`);
  writeFileSync(bad, '{"instances": [1, 2');
  const r = await bench([...base, '--input', bad]);
  t.equal(r.code, 2);
  t.match(r.stderr, /is not valid JSON/);
  const help = await bench(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: actorserve bench <target> --servable NAME --method NAME/);
  t.equal(parseDuration('1.5m', 'x'), 90_000);
  t.equal(parseDuration('250ms', 'x'), 250);
  t.throws(() => parseDuration('2', 'x'), { message: /x needs a unit: 2s, 2ms or 2m/ });
});

t.test('the raw HTTP/1.1 client: chunked bodies, Connection: close, error_msg across chunks', async (t) => {
  let mode = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const m = mode++ % 4;
      if (m === 0) {
        res.writeHead(200, { 'content-type': 'application/json' }); // chunked
        res.write('{"instances":[{"y":');
        setTimeout(() => res.end('[[2.0,2.0],[2.0,2.0]]}]}'), 2);
      } else if (m === 1) {
        res.writeHead(200, { connection: 'close', 'content-length': '4' }).end('{"a"'); // then closes
      } else if (m === 2) {
        res.writeHead(200);
        res.write('{"instances":[{"error_');
        setTimeout(() => res.end('msg":"boom"}]}'), 2);
      } else {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('x'.repeat(10_000));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const endpoint = { host: '127.0.0.1', port: (server.address() as { port: number }).port };
  const conn = new HttpConnection(endpoint, encodeRequest(endpoint, '/model/a:b', {}, Buffer.from('{}')), 5000);
  const outcomes = [];
  for (let i = 0; i < 8; i++) outcomes.push(await conn.send());
  conn.close();
  t.same(
    outcomes.map((o) => o?.kind),
    [undefined, undefined, 'instance error', 'HTTP 500', undefined, undefined, 'instance error', 'HTTP 500'],
  );
  t.equal(outcomes[2]!.message, 'boom');
  t.ok(outcomes[3]!.message.length <= 300, 'error bodies are sampled, not kept');
});

t.test('histogram quantiles within 0.2 %, exact min and max; stream ids override', async (t) => {
  const h = new Histogram();
  for (let i = 1; i <= 100_000; i++) h.record(i / 10); // 0.1 .. 10000 ms
  t.equal(h.count, 100_000);
  t.equal(h.quantileMs(0), 0.1);
  t.equal(h.quantileMs(1), 10_000);
  for (const q of [0.5, 0.9, 0.99]) {
    const exact = q * 10_000;
    t.ok(Math.abs(h.quantileMs(q) - exact) / exact < 0.002, `q${q}: ${h.quantileMs(q)} vs ${exact}`);
  }
  const g = new Histogram();
  g.record(3);
  g.merge(h.data());
  t.equal(g.count, 100_001);
  t.ok(Number.isNaN(new Histogram().quantileMs(0.5)));

  const { predictStream } = protos();
  const payload = predictStream.requestSerialize({ id: 7, servable_spec: { name: 'add', method_name: 'add_common', version_number: 0 }, instances: [] });
  for (const id of [1, 127, 128, 300_000, 2 ** 40 + 3]) {
    const framed = streamMessage(payload, id);
    t.equal(framed.readUInt32BE(1), framed.length - 5);
    t.equal(Number(predictStream.requestDeserialize(framed.subarray(5)).id), id, `id ${id}`);
  }
});
