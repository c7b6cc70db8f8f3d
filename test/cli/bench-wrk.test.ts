// `actorserve bench` with wrk as the REST load generator (the default when wrk is on PATH):
// a real actorserve REST server in this process, short bounded levels; the table and the JSON
// carry requests/s and the generator's (and, with --server-pid, the server's) CPU per request;
// msgpack bodies survive the Lua script; failures wrk counts (status >= 400, socket errors)
// are reported by kind with a sample; a server that goes away stops the level; without wrk on
// PATH the js generator takes over and says so; flags that do not fit wrk are refused.
import t from 'tap';
import http from 'node:http';
import type { ServingServer } from '../../dist/server.js';
import { findExecutable } from '../../dist/cli/find-executable.js';
import { type Level, addEngine, bench } from '../helpers/bench.js';

interface Doc {
  generator: string;
  levels: Level[];
}

const call = ['--servable', 'add', '--method', 'add_common'];
let engine: ServingServer;
let address = '';

t.before(async () => {
  // wrk is a Debian package CI installs (.ci/run); without it these tests cannot run
  if (!findExecutable('wrk')) throw new Error('wrk is not on PATH: apt-get install wrk');
  engine = await addEngine();
  address = (await engine.startRestfulServer('127.0.0.1:0')).address;
});
t.teardown(() => engine?.stop());

t.test('wrk is the default for REST with --duration: requests/s and CPU per request of wrk and of the server', async (t) => {
  const r = await bench([address, ...call, '--duration', '1s', '--warmup', '200ms', '--concurrency', '1,4', '--server-pid', String(process.pid), '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, '', 'no note: wrk was found');
  const doc = JSON.parse(r.stdout) as Doc;
  t.equal(doc.generator, 'wrk');
  t.same(doc.levels.map((l) => l.concurrency), [1, 4]);
  for (const l of doc.levels) {
    t.equal(l.generator, 'wrk');
    t.ok(l.ok > 0, `c=${l.concurrency}: ${l.ok} answered`);
    t.equal(l.errors, 0);
    t.same(l.errorsByKind, {});
    t.equal(l.requests, l.ok);
    t.ok(Math.abs(l.requestsPerSecond - l.ok / l.seconds) < 1e-6 * l.requestsPerSecond, 'req/s = ok / seconds');
    t.ok(l.latencyMs.p50 > 0 && l.latencyMs.p99 >= l.latencyMs.p50, 'latency percentiles from wrk');
    t.type(l.generatorCpuSeconds, 'number', "wrk's CPU time was read");
    t.ok(Math.abs(l.generatorCpuPerRequestUs! - (l.generatorCpuSeconds! / l.requests) * 1e6) < 1e-6, 'per request = CPU / requests');
    t.ok(l.serverCpuPerRequestUs! > 0, `the server (this process) used ${l.serverCpuPerRequestUs} µs per request`);
  }

  const table = await bench([address, ...call, '--duration', '500ms', '--warmup', '0', '--concurrency', '2', '--server-pid', String(process.pid)]);
  t.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  t.match(lines[0], /wrk \(\/.*wrk\) with up to \d+ load thread/);
  t.match(lines[1], /\s+errors\s+gen CPU µs\/req\s+server CPU µs\/req$/);
  const cells = lines[2]!.trim().split(/\s+/);
  t.equal(cells[0], '2');
  t.ok(Number(cells[2]) > 0, 'req/s');
  t.equal(cells[8], '0', 'no errors');
  t.ok(Number.isFinite(Number(cells[9])) && Number(cells[10]) > 0, 'both CPU columns hold numbers');
});

t.test('msgpack bodies go through the Lua script byte for byte', async (t) => {
  const r = await bench([address, ...call, '--msgpack', '--duration', '500ms', '--warmup', '0', '--concurrency', '2', '--generator', 'wrk', '--json']);
  t.equal(r.code, 0, r.stderr);
  const [l] = (JSON.parse(r.stdout) as Doc).levels;
  t.ok(l!.ok > 0 && l!.errors === 0, `${l!.ok} msgpack requests answered 200, ${l!.errors} failed`);
});

t.test('failures wrk counts: replies >= 400 and dropped connections, by kind, with a sample', async (t) => {
  // the preflight request and the first 3 of the level succeed (few, so a slow machine gets
  // past them); then every 5th request's connection is dropped without a reply, the rest get 503
  let served = 0;
  let ok = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      served++;
      if (served <= 4) {
        ok++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"instances":[{"y":[[2.0,2.0],[2.0,2.0]]}]}');
      } else if (served % 5 === 0) {
        req.socket.destroy();
      } else {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error_msg":"busy, try later"}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const r = await bench([`127.0.0.1:${port}`, ...call, '--duration', '2s', '--warmup', '0', '--concurrency', '2', '--json']);
  t.equal(r.code, 0, `some requests succeeded: exit 0 (${r.stderr})`);
  const [l] = (JSON.parse(r.stdout) as Doc).levels;
  t.equal(l!.generator, 'wrk');
  t.equal(l!.ok, ok - 1, 'every 200 of the level counted as a success (the preflight took one)');
  t.ok(l!.errorsByKind['HTTP status >= 400']! > 0, 'replies >= 400 counted');
  t.ok(l!.errorsByKind['read error']! > 0, 'dropped connections counted');
  t.equal(l!.errors, Object.values(l!.errorsByKind).reduce((a, b) => a + b, 0));
  t.equal(l!.requests, l!.ok + l!.errors);
  t.match(l!.errorSamples['HTTP status >= 400'] ?? l!.errorSamples['read error'], /^(HTTP 503: busy, try later|connection reset: .+)$/, 'a sample from one request after the level');

  served = 3; // the preflight request gets the last 200, the level none
  const table = await bench([`127.0.0.1:${port}`, ...call, '--duration', '500ms', '--warmup', '0', '--concurrency', '2']);
  t.equal(table.code, 1, 'no request of the level succeeded: exit 1');
  t.match(table.stdout, /^c=2: \d+ × HTTP status >= 400/m, 'the table lists the kinds wrk counted');
  t.match(table.stderr, /no request succeeded at concurrency 2/);
});

t.test('the server goes away mid-level: the level stops there, later levels are not run, exit 1', async (t) => {
  const own = await addEngine();
  t.teardown(() => own.stop());
  const at = (await own.startRestfulServer('127.0.0.1:0')).address;
  let running: () => void = () => undefined;
  const measuring = new Promise<void>((resolve) => (running = resolve));
  // TTY: the live line shows when wrk's measured run is under way
  const run = bench([at, ...call, '--duration', '60s', '--warmup', '0', '--concurrency', '2,4', '--json'], true, (err) => {
    if (/c=2 {2}\d+\.\d s {2}\(wrk: counts at the end of the level\)/.test(err)) running();
  });
  await measuring;
  await new Promise((r) => setTimeout(r, 500));
  await own.stop();
  const r = await run;
  t.equal(r.code, 1);
  t.match(r.stderr, /server unreachable from t=\d+\.\d\d s at concurrency 2; the level stopped there .*, 1 later level\(s\) not run/);
  const doc = JSON.parse(r.stdout) as Doc;
  t.equal(doc.levels.length, 1, 'the level after it was not run');
  const [l] = doc.levels;
  t.ok(l!.ok > 0, `${l!.ok} answered before the stop`);
  t.ok(l!.seconds < 60 && l!.unreachableFromSeconds === l!.seconds, 'the rates cover the time before the server went');
});

t.test('without wrk on PATH: the js generator, and a note that says how to install wrk', async (t) => {
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent'; // bench looks wrk up on this PATH
  t.teardown(() => {
    process.env['PATH'] = path;
  });
  const r = await bench([address, ...call, '--duration', '300ms', '--warmup', '0', '--concurrency', '2', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, 'actorserve bench: wrk is not on PATH, so the load comes from the js generator, which costs several times more CPU per request (Debian/Ubuntu: apt-get install wrk)\n');
  const doc = JSON.parse(r.stdout) as Doc;
  t.equal(doc.generator, 'js');
  t.ok(doc.levels[0]!.ok > 0);
  t.ok(doc.levels[0]!.generatorCpuPerRequestUs! > 0, "the js generator's CPU per request (this process)");

  const wanted = await bench([address, ...call, '--duration', '300ms', '--generator', 'wrk']);
  t.equal(wanted.code, 1);
  t.equal(wanted.stderr, 'actorserve bench: --generator wrk: wrk is not on PATH (Debian/Ubuntu: apt-get install wrk), or use --generator js\n');
});

t.test('flags that do not fit wrk exit 2 with the reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--generator', 'h2load'], /--generator takes wrk or js, got 'h2load'/],
    [['--generator', 'wrk', '--protocol', 'grpc'], /--generator wrk is for --protocol rest/],
    [['--generator', 'wrk', '--requests', '10'], /--requests needs --generator js/],
    [['--generator', 'wrk', '--http-client', 'node'], /--http-client is for --generator js/],
    [['--server-pid', 'me'], /--server-pid takes an integer >= 1/],
  ];
  for (const [flags, re] of cases) {
    const r = await bench([address, ...call, ...flags]);
    t.equal(r.code, 2, flags.join(' '));
    t.match(r.stderr, re);
  }
  const unix = await bench(['unix:/tmp/nowhere.sock', ...call, '--generator', 'wrk']);
  t.equal(unix.code, 2);
  t.match(unix.stderr, /--generator wrk connects over TCP only/);
});
