// `actorserve serve` without --device-ids / --intra-op-threads plans device actors × intra-op
// threads per servable (engine/device-plan.ts) and says so in the startup log; named settings win.
import t from 'tap';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';
import { splitCores } from '../../dist/engine/device-plan.js';

const ADD_BODY = JSON.stringify({ instances: { x1: [[1, 1], [1, 1]], x2: [[1, 1], [1, 1]] } });
const started = (name: string) => new RegExp(`servable '${name}' version 1 started on devices \\[([\\d, ]+)\\]: (\\d+) device actors? × (\\d+) intra-op threads? \\((.*)\\)$`, 'm');

async function jpegBody(): Promise<string> {
  const raw = Buffer.alloc(64 * 48 * 3, 90);
  const jpeg = await sharp(raw, { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
  return JSON.stringify({ instances: { image: { b64: jpeg.toString('base64') } } });
}

async function post(port: string, path: string, body: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body });
  await r.arrayBuffer();
  return r.status;
}

t.test('no device settings: a tiny model gets 1 actor × 1 thread, the CNN the cores its cost asks for; both serve', async (t) => {
  const p = run(['serve', '--servables', 'add,resnet', '--rest-address', '127.0.0.1:0', '--no-grpc']);
  const [, port] = await p.waitFor(REST_LISTENING);
  const cores = availableParallelism();
  const add = started('add').exec(p.output());
  t.ok(add, 'the add line says actors × threads');
  t.same([add![1], add![2], add![3]], ['0', '1', '1'], 'add: 1 device actor × 1 intra-op thread');
  t.match(add![4] ?? '', new RegExp(`^auto: ${cores} cores?, one instance \\d+ µs on 1 thread \\(in a batch of 8\\) → 1 core of compute$`));
  const resnet = started('resnet').exec(p.output());
  t.ok(resnet, 'the resnet line says actors × threads');
  const [actors, threads] = [Number(resnet![2]), Number(resnet![3])];
  const computeCores = Number(/→ (\d+) cores? of compute/.exec(resnet![4] ?? '')?.[1]);
  t.match(resnet![4] ?? '', new RegExp(`^auto: ${cores} cores?, one instance [\\d.]+ m?s on 1 thread`));
  t.ok(computeCores >= Math.min(cores, 2) && computeCores <= cores, `the CNN (ms per instance) asks for more than one core, at most all ${cores}: ${computeCores}`);
  t.same({ actors, threads }, splitCores(computeCores, 4), 'split into actors first, then threads');
  t.equal(resnet![1], Array.from({ length: actors }, (_, i) => i).join(', '), 'device ids 0..n-1');
  t.equal(await post(port!, '/model/add:add_common', ADD_BODY), 200);
  t.equal(await post(port!, '/model/resnet:classify_top1', await jpegBody()), 200);
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0);
});

t.test('named device ids and threads win over the plan', async (t) => {
  const p = run(['serve', '--servables', 'add,resnet', '--device-ids', '0', '--intra-op-threads', '2', '--rest-address', '127.0.0.1:0', '--no-grpc']);
  const [, port] = await p.waitFor(REST_LISTENING);
  t.match(p.output(), /servable 'add' version 1 started on devices \[0\]: 1 device actor × 2 intra-op threads \(as configured\)/);
  t.match(p.output(), /servable 'resnet' version 1 started on devices \[0\]: 1 device actor × 2 intra-op threads \(as configured\)/);
  t.equal(await post(port!, '/model/resnet:classify_top1', await jpegBody()), 200);
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0);
});

t.test('named device ids only: the threads fill the cores among them (the first actor is remade when they differ)', async (t) => {
  const p = run(['serve', '--servables', 'resnet', '--device-ids', '0', '--rest-address', '127.0.0.1:0', '--no-grpc']);
  const [, port] = await p.waitFor(REST_LISTENING);
  const m = started('resnet').exec(p.output());
  t.ok(m);
  const computeCores = Number(/→ (\d+) cores? of compute/.exec(m![4] ?? '')?.[1]);
  t.same([m![1], Number(m![2]), Number(m![3])], ['0', 1, computeCores], '1 actor × every core of compute');
  t.match(m![4] ?? '', /device ids as configured$/);
  t.equal(await post(port!, '/model/resnet:classify_top1', await jpegBody()), 200);
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0);
});
