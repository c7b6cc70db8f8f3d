// The worker-thread device actor's control plane (comlink on its own port) next to its data
// path: load with a protocol version check, health and stats, stop after the batches already
// sent, and death answering control calls.
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import t from 'tap';
import type { BatchInput, DeviceEvents } from '../../dist/actors/device.js';
import { DeviceHandle } from '../../dist/actors/device-handle.js';
import { Mailbox } from '../../dist/actors/mailbox.js';
import { readReplyFrame, runFrameBytes, writeRunFrame } from '../../dist/actors/batch-frames.js';
import { DEVICE_PROTOCOL_VERSION, type DeviceControl, type DeviceThreadData, type RunFrame } from '../../dist/actors/protocol.js';
import { addModel, identityModel, rnnModel } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('device-control');
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.model('add', 1, 'add4.onnx', addModel({ batch: 4 }));
fx.model('add', 1, 'strings.onnx', identityModel('string', { batch: 'N' }));
// x [N, 4] with a state h [1, N, 8]: the batch dim named N sits at axis 1 of h
fx.model('add', 1, 'rnn.onnx', rnnModel({ batch: 'N' }));
t.teardown(() => fx.remove());

const MODEL_FILE = path.join(fx.dir, 'add', '1', 'add.onnx');

function start(options: { protocolVersion?: number; events?: Partial<DeviceEvents>; files?: readonly string[]; measureCost?: readonly number[] } = {}): DeviceHandle {
  return new DeviceHandle({
    init: {
      protocolVersion: options.protocolVersion ?? DEVICE_PROTOCOL_VERSION,
      deviceId: 0,
      deviceType: 'cpu',
      intraOpThreads: 1,
      models: (options.files ?? [MODEL_FILE]).map((file) => ({ key: path.basename(file), files: [file] })),
      ...(options.measureCost ? { measureCost: options.measureCost } : {}),
    },
    slots: 2,
    initialSlotBytes: 1024,
    events: { slotFreed: () => {}, died: () => {}, ...options.events },
  });
}

/** x1 = k (four times), x2 = 1: one instance of the add model. */
function batch(k: number): BatchInput[] {
  return [
    { dtype: 'float32', dims: [1, 2, 2], parts: [Float32Array.of(k, k, k, k)] },
    { dtype: 'float32', dims: [1, 2, 2], parts: [Float32Array.of(1, 1, 1, 1)] },
  ];
}

async function runAdd(h: DeviceHandle, k: number): Promise<number[]> {
  const result = await h.run(0, 0, batch(k));
  const out = result.outputs[0];
  const values = out && 'data' in out ? [...out.data].map(Number) : [];
  result.release();
  return values;
}

t.test('measureCost: the actor times warm-up runs on zeros at the batch asked for, or says why it could not', async (t) => {
  const files = ['add.onnx', 'add4.onnx', 'strings.onnx', 'rnn.onnx'].map((f) => path.join(fx.dir, 'add', '1', f));
  const measured = start({ files, measureCost: [8, 8, 8, 8] });
  await measured.ready;
  const [dynamic, fixed, strings, named] = measured.warmup ?? [];
  t.match(named, [{ batch: 8 }], 'every dim named like the first dims is the batch, wherever it sits');
  t.match(dynamic, [{ batch: 8 }], 'a dynamic first dim takes the batch');
  t.match(fixed, [{ batch: 1 }], 'a fixed batch dim runs as it is (the supervisor divides by it)');
  t.ok([dynamic, fixed].every((runs) => typeof runs?.[0] === 'object' && runs[0].ms > 0), 'times in ms');
  t.same(strings, ["input 'x' is string"]);
  t.same(await runAdd(measured, 2), [3, 3, 3, 3], 'serves after the warm-up');
  await measured.stop();
  const single = start({ measureCost: [1] });
  await single.ready;
  t.match(single.warmup, [[{ batch: 1 }]], 'a model without a batch dim: one instance');
  await single.stop();
  const plain = start();
  await plain.ready;
  t.equal(plain.warmup, undefined, 'no warm-up unless asked');
  await plain.stop();
});

t.test('a device actor speaking another protocol version fails its load with a clear error', async (t) => {
  let died = false;
  const h = start({ protocolVersion: DEVICE_PROTOCOL_VERSION + 1, events: { died: () => (died = true) } });
  await t.rejects(h.ready, {
    code: 'E_LOAD_FAILED',
    message: `device 0: device protocol version mismatch: the supervisor speaks version ${DEVICE_PROTOCOL_VERSION + 1}, the device actor version ${DEVICE_PROTOCOL_VERSION} (both sides must come from the same build)`,
  });
  await h.stop();
  t.equal(h.state, 'dead');
  t.notOk(died, 'a failed load is not a death (no restart)');
});

t.test('load, health and stats are control calls; batches still run on the data path', async (t) => {
  const h = start();
  t.teardown(() => h.stop());
  const graphs = await h.ready;
  t.same(graphs[0]?.[0]?.inputs.map((i) => i.name), ['x1', 'x2']);
  t.same(await h.health(), { phase: 'ready', queuedBatches: 0 });
  t.same(await runAdd(h, 2), [3, 3, 3, 3]);
  const stats = await h.stats();
  t.equal(stats.batchesRun, 1);
  t.equal(stats.batchesFailed, 0);
  t.ok(stats.heapUsedBytes > 0 && stats.uptimeMs > 0, 'heap and uptime reported');
});

t.test('stop finishes every batch sent before it, though control travels on a port and data in the mailbox', async (t) => {
  let died = false;
  const h = start({ events: { died: () => (died = true) } });
  await h.ready;
  const answers = [runAdd(h, 10), runAdd(h, 20)];
  const stopped = h.stop();
  t.same(await Promise.all(answers), [[11, 11, 11, 11], [21, 21, 21, 21]], 'both batches answered');
  await stopped;
  t.equal(h.state, 'dead');
  t.notOk(died, 'a stop is not a death');
});

t.test('a killed actor reports its death once and answers control calls with E_ACTOR_DIED', async (t) => {
  const deaths: string[] = [];
  const h = start({ events: { died: (reason) => deaths.push(reason) } });
  await h.ready;
  await h.kill();
  t.same(deaths, ['device actor crashed on request (fault injection)']);
  await t.rejects(h.health(), { code: 'E_ACTOR_DIED' });
  await t.rejects(h.run(0, 0, batch(1)), { code: 'E_INTERNAL', message: /no free slot/ });
});

t.test('drain(n) waits for batch n when the control call overtakes it (the port and the mailbox are not ordered)', async (t) => {
  // The actor spoken to directly, as DeviceHandle does, to send the control call first.
  const channel = new MessageChannel();
  const slot = new SharedArrayBuffer(64);
  const requests = Mailbox.create(1024);
  const replies = Mailbox.create(1024);
  const workerData: DeviceThreadData = {
    protocolVersion: DEVICE_PROTOCOL_VERSION,
    deviceId: 0,
    deviceType: 'cpu',
    intraOpThreads: 1,
    models: [{ key: 'add.onnx', files: [MODEL_FILE] }],
    control: channel.port2,
    requests: requests.buffer,
    replies: replies.buffer,
    slots: [slot],
  };
  const worker = new Worker(new URL('../../dist/actors/device-actor.js', import.meta.url), { workerData, transferList: [channel.port2], execArgv: [] });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const control = Comlink.wrap<DeviceControl>(nodeEndpoint(channel.port1));
  t.teardown(() => channel.port1.close());
  await control.load();
  let drained = false;
  const draining = control.drain(1).then(() => (drained = true));
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(drained, 'not drained before batch 1 arrives');

  new Float32Array(slot, 0, 4).fill(2);
  new Float32Array(slot, 16, 4).fill(1);
  const dims = [1, 2, 2];
  const frame: RunFrame = {
    id: 1,
    slot: 0,
    generation: 0,
    model: 0,
    subgraph: 0,
    inputs: [
      { dtype: 'float32', dims, offset: 0, length: 4 },
      { dtype: 'float32', dims, offset: 16, length: 4 },
    ],
  };
  t.ok(requests.post(runFrameBytes(frame), (view, at) => writeRunFrame(frame, view, at)));
  await draining;
  // The control port's answers are ordered among themselves (not with the mailbox's).
  t.same(await control.health(), { phase: 'ready', queuedBatches: 0 }, 'drained only once batch 1 was done');
  t.equal((await control.stats()).batchesRun, 1);
  const reply = replies.take(readReplyFrame);
  t.same(reply && 'outputs' in reply && [...new Float32Array(slot, 0, 4)], [3, 3, 3, 3]);
  void control.stop(); // never answers: the thread exits
  t.equal(await exited, 0, 'stop exits the thread cleanly');
});
