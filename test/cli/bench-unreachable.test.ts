// `actorserve bench` when the server goes away mid-level: the level stops where the server went
// ("server unreachable from t=…"), its rates cover the time before, later levels are not run,
// exit 1; for REST, gRPC unary and PredictStream alike.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { runBenchCommand } from '../../dist/cli/bench.js';
import { BUNDLED_SERVABLES } from '../helpers/fixtures.js';

interface Level {
  concurrency: number;
  ok: number;
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
    const args = [address, '--protocol', protocol, '--servable', 'add', '--method', 'add_common', '--duration', '60s', '--warmup', '1ms', '--concurrency', '2,4', '--workers', '1', '--json'];
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

