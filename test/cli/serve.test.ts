// `actorserve serve` (what `npm start` runs): starts the bundled servables and REST, answers the
// README's example, drains on SIGINT/SIGTERM and exits 0; bad flags and busy ports exit non-zero.
import t from 'tap';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';
import { Client } from '../../dist/transports/grpc/client.js';
import { ServingServer } from '../../dist/index.js';
import { SERVABLE_START_OPTIONS } from '../../dist/engine/start-config.js';

const SEED = JSON.stringify({ instances: { x1: [[1.0, 1.0], [1.0, 1.0]], x2: [[1.0, 1.0], [1.0, 1.0]] } });

t.test('serve starts the bundled servables, answers the README example, Ctrl-C drains and exits 0', async (t) => {
  const p = run(['serve', '--device-ids', '0,1', '--rest-address', '127.0.0.1:0', '--grpc-address', '127.0.0.1:0', '--access-log']);
  const [, port] = await p.waitFor(REST_LISTENING);
  const [, grpcPort] = await p.waitFor(/gRPC server listening on 127\.0\.0\.1:(\d+)/);
  await p.waitFor(/serving add, add_sub, matmul, resnet, rnn from/);
  t.match(p.output(), /servable 'matmul_distributed' is distributed: not started here; its ranks run on agents/, 'the distributed example is left out, and the log says why');
  t.match(p.output(), /servable 'add' version 1 started on devices \[0, 1\]/);
  const r = await fetch(`http://127.0.0.1:${port}/model/add:add_common`, { method: 'POST', body: SEED, headers: { 'x-request-id': 'readme-1' } });
  t.equal(r.status, 200);
  t.same(await r.json(), { instances: [{ y: [[2, 2], [2, 2]] }] });
  // the stateful example: a one-step sequence (docs/sequences.md)
  const seq = await fetch(`http://127.0.0.1:${port}/model/rnn:step`, {
    method: 'POST',
    body: JSON.stringify({ instances: [{ x: [0, 0, 0, 0] }], parameters: { sequence_id: 'npm-start', sequence_start: true, sequence_end: true } }),
  });
  t.equal(seq.status, 200);
  t.match(await seq.json(), { instances: [{ steps: [1] }] });
  await p.waitFor(/INFO {2}request requestId=readme-1 servable=add method=add_common version=1 transport=rest instances=1 code=OK/);
  const client = new Client(`127.0.0.1:${grpcPort}`, 'add', 'add_common');
  const x = { dtype: 'float32' as const, shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  const [out] = await client.infer([{ x1: x, x2: x }]);
  t.same([...((out!.y!.data as Float32Array))], [2, 4, 6, 8], 'gRPC answers too');
  client.close();
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0, 'exit code 0');
  t.match(p.output(), /SIGINT: draining/);
});

t.test('SIGTERM under load: every accepted request gets its reply or an explicit error, exit 0', async (t) => {
  const p = run(['serve', '--servables', 'add', '--rest-address', '127.0.0.1:0', '--no-grpc', '--log-format', 'json']);
  const [, port] = await p.waitFor(REST_LISTENING);
  let stop = false;
  const outcomes = { ok: 0, explicit: 0, refused: 0, other: [] as string[] };
  const loops = Array.from({ length: 8 }, async () => {
    while (!stop) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/model/add:add_common`, { method: 'POST', body: SEED });
        const body = (await r.json()) as { instances?: unknown; error_msg?: string };
        if (r.status === 200 && body.instances) outcomes.ok++;
        else if (r.status === 503 && body.error_msg) outcomes.explicit++;
        else outcomes.other.push(`${r.status} ${JSON.stringify(body)}`);
      } catch {
        outcomes.refused++; // the listener closed: the request was never accepted
        stop = true;
      }
    }
  });
  await new Promise((r) => setTimeout(r, 500));
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, 'exit code 0');
  stop = true;
  await Promise.all(loops);
  t.ok(outcomes.ok > 0, `${outcomes.ok} answered before the drain`);
  t.notMatch(p.output(), /gRPC server listening/, '--no-grpc: no gRPC server');
  t.same(outcomes.other, [], 'no reply was lost or malformed');
  const lines = p.output().trim().split('\n').filter((l) => l.startsWith('{'));
  t.ok(lines.length > 0 && lines.every((l) => typeof (JSON.parse(l) as { msg?: unknown }).msg === 'string'), 'json log lines');
});

t.test('bad flags, bad config, unknown commands, busy ports exit non-zero with a one-line reason', async (t) => {
  const a = run(['serve', '--no-such-flag']);
  t.equal(await a.exited, 2);
  t.match(a.output(), /actorserve: Unknown option '--no-such-flag'/);
  const b = run(['frobnicate']);
  t.equal(await b.exited, 2);
  t.match(b.output(), /unknown command 'frobnicate'/);
  const c = run(['serve', '--servables', 'missing_one', '--no-grpc', '--rest-address', '127.0.0.1:0']);
  t.equal(await c.exited, 2, 'a servable that does not exist is a usage error, found before any model loads');
  t.match(c.output(), /servable 'missing_one': folder .* does not exist; servables in .*: add, add_sub, matmul, matmul_distributed, mlp_pipeline, resnet, rnn/);
  const d = run(['serve', '--help']);
  t.equal(await d.exited, 0);
  t.match(d.output(), /Usage: actorserve serve/);

  const fx = servableFixture('cli');
  t.teardown(() => fx.remove());
  const config = path.join(fx.dir, 'bad.yaml');
  writeFileSync(config, 'servables:\n  - name: add\n    deviceIdz: [0]\n');
  const e = run(['serve', '--config', config]);
  t.equal(await e.exited, 2);
  t.match(e.output(), /config\.servables\[0\]: unknown key 'deviceIdz' \(did you mean 'deviceIds'\?\)/);

  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const f = run(['serve', '--servables', 'add', '--no-grpc', '--rest-address', `127.0.0.1:${port}`]);
  t.equal(await f.exited, 1);
  t.match(f.output(), new RegExp(`actorserve: .*127\\.0\\.0\\.1:${port}`));
});

t.test('a limit written once reads the same from a flag, the config file and the library', async (t) => {
  const fx = servableFixture('cli-limits');
  t.teardown(() => fx.remove());
  const flag = run(['serve', '--max-msg-mb', '513']);
  t.equal(await flag.exited, 2);
  const config = path.join(fx.dir, 'big.yaml');
  writeFileSync(config, 'grpc:\n  maxMsgMbSize: 513\n');
  const file = run(['serve', '--config', config]);
  t.equal(await file.exited, 2);
  const server = new ServingServer();
  server.log = () => undefined;
  t.teardown(() => server.stop());
  const library = ((await server.startRestfulServer('127.0.0.1:0', { maxMsgMbSize: 513 }).catch((e: unknown) => e)) as Error).message;

  const phrase = 'must be a number in (0, 512], got 513';
  t.match(flag.output(), `actorserve: --max-msg-mb ${phrase}\n`);
  t.match(file.output(), `actorserve: config.grpc.maxMsgMbSize: ${phrase}\n`);
  t.equal(library, `RESTful server options: maxMsgMbSize ${phrase}`);
});

t.test('unknown flags and config keys are refused with the closest known one', async (t) => {
  const flag = run(['serve', '--max-msg-mbs', '5']);
  t.equal(await flag.exited, 2);
  t.match(flag.output(), "actorserve: Unknown option '--max-msg-mbs' (did you mean '--max-msg-mb'?)");
  const fx = servableFixture('cli-keys');
  t.teardown(() => fx.remove());
  const config = path.join(fx.dir, 'typo.yaml');
  writeFileSync(config, 'rest:\n  maxMsgMBSize: 5\n');
  const file = run(['serve', '--config', config]);
  t.equal(await file.exited, 2);
  t.match(file.output(), "actorserve: config.rest: unknown key 'maxMsgMBSize' (did you mean 'maxMsgMbSize'?)");
});

t.test('--help comes from the schema: each flag shows its field\'s doc and default', async (t) => {
  const help = run(['serve', '--help']);
  t.equal(await help.exited, 0);
  const intra = SERVABLE_START_OPTIONS.intraOpThreads;
  t.match(help.output(), `--intra-op-threads N    ${intra.doc} (default: auto)\n`);
  const ids = SERVABLE_START_OPTIONS.deviceIds;
  t.match(help.output(), `--device-ids 0,1        ${ids.doc} (default: auto, from the cores and the model cost; docs/configuration.md)\n`);
});
