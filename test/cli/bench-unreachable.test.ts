// `actorserve bench` when the server goes away mid-level: the level stops where the server went
// ("server unreachable from t=…"), its rates cover the time before, later levels are not run,
// exit 1; for REST, gRPC unary and PredictStream alike (the js generator; wrk: bench-wrk.test.ts).
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { runBenchCommand } from '../../dist/cli/bench.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

interface Level {
  concurrency: number;
  ok: number;
  errorsByKind: Record<string, number>;
  seconds: number;
  requestsPerSecond: number;
  unreachableFromSeconds?: number;
}

t.before(() => ensureExampleModels(BUNDLED_SERVABLES));

for (const protocol of ['rest', 'grpc', 'grpc-stream'] as const) {
  t.test(`${protocol}: the server stops mid-level`, async (t) => {
    const engine = new ServingServer();
    engine.log = () => {};
    t.teardown(() => engine.stop());
    await engine.startServables(new ServableStartConfig({ servableDirectory: BUNDLED_SERVABLES, servableName: 'add' }));
    const address = protocol === 'rest' ? (await engine.startRestfulServer('127.0.0.1:0')).address : (await engine.startGrpcServer('127.0.0.1:0')).address;

    let stdout = '';
    let stderr = '';
    const sink = (f: (s: string) => void) => ({ write: (s: string | Uint8Array) => (f(String(s)), true) }) as unknown as NodeJS.WritableStream;
    const err = sink((s) => (stderr += s)) as NodeJS.WritableStream & { isTTY?: boolean };
    err.isTTY = true; // the progress line tells when requests are being answered
    const args = [address, '--protocol', protocol, '--servable', 'add', '--method', 'add_common', '--duration', '60s', '--warmup', '1ms', '--concurrency', '2,4', '--workers', '1', '--generator', 'js', '--json'];
    const run = runBenchCommand(args, { stdout: sink((s) => (stdout += s)), stderr: err });
    while (!/\b[1-9]\d* ok\b/.test(stderr)) await new Promise((r) => setTimeout(r, 20));
    await engine.stop();
    const code = await run;

    t.equal(code, 1, 'exit 1');
    t.match(stderr, /server unreachable from t=\d+\.\d\d s at concurrency 2; the level stopped there .*, 1 later level\(s\) not run/);
    const levels = (JSON.parse(stdout) as { levels: Level[] }).levels;
    t.equal(levels.length, 1, 'the level after it was not run');
    const [level] = levels;
    t.ok(level!.ok > 0, `${level!.ok} answered before the stop`);
    t.type(level!.unreachableFromSeconds, 'number', 'the level says where the server went');
    t.ok(level!.seconds < 60, 'the level ended before its 60 s');
    t.ok(Math.abs(level!.seconds - level!.unreachableFromSeconds!) < 1e-6, 'the rates cover the time before the server went');
  });
}


t.test('grpc-stream against `actorserve serve` that gets SIGTERM: the drained stream answers at once, the server stops', async (t) => {
  const server = runCli(['serve', '--servables', 'add', '--no-rest', '--grpc-address', '127.0.0.1:0', '--drain-timeout-ms', '20000']);
  const [, port] = await server.waitFor(/gRPC server listening on 127\.0\.0\.1:(\d+)/);
  await server.waitFor(/serving add from/);
  let stdout = '';
  let stderr = '';
  const sink = (f: (s: string) => void) => ({ write: (s: string | Uint8Array) => (f(String(s)), true) }) as unknown as NodeJS.WritableStream;
  const err = sink((s) => (stderr += s)) as NodeJS.WritableStream & { isTTY?: boolean };
  err.isTTY = true;
  const args = [`127.0.0.1:${port}`, '--protocol', 'grpc-stream', '--servable', 'add', '--method', 'add_common', '--duration', '60s', '--warmup', '1ms', '--concurrency', '4', '--workers', '1', '--json'];
  const run = runBenchCommand(args, { stdout: sink((s) => (stdout += s)), stderr: err });
  while (!/\b[1-9]\d* ok\b/.test(stderr)) await new Promise((r) => setTimeout(r, 20));
  server.child.kill('SIGTERM');
  t.equal(await run, 1, 'bench exit 1');
  t.equal(await server.exited, 0, 'server exit 0');
  t.match(stderr, /server unreachable from t=/);
  const [level] = (JSON.parse(stdout) as { levels: Level[] }).levels;
  // Before: the bench kept its side of the ended stream open, its requests waited for their
  // timeout (counted after the level: 0 errors) and the server's drain waited for the stream.
  t.ok((level!.errorsByKind['gRPC UNAVAILABLE'] ?? 0) > 0, `the stream's requests in flight were answered with the server's UNAVAILABLE (${JSON.stringify(level!.errorsByKind)})`);
  t.match(server.output(), /SIGTERM: draining[^\n]*\n[^\n]*stopped$/m, 'the server drained and stopped');
  t.notMatch(server.output(), /cut off/, 'nothing was cut off by the drain timeout');
});
