// The scheduler and the device group's policies against in-process fake devices: batching,
// padding, queue delay, retry on device death, restart backoff and give-up, close, dropped
// tasks. No ONNX Runtime and no threads: each test takes milliseconds.
import t from 'tap';
import { BatchPlan } from '../../dist/actors/batch-plan.js';
import { DEFAULT_RESTART_POLICY, DeviceGroup, type RestartPolicy, restartDelayMs } from '../../dist/actors/device-group.js';
import { ModelScheduler, type RequestState } from '../../dist/actors/model-scheduler.js';
import { ServingError } from '../../dist/engine/errors.js';
import type { Tensor } from '../../dist/engine/tensor.js';
import { type FakeDevice, type FakeDeviceOptions, addGraph, fakeDevices } from '../helpers/fake-device.js';
import { f32 } from '../helpers/fixtures.js';

interface RigOptions {
  readonly deviceIds?: readonly number[];
  readonly maxBatchSize?: number;
  readonly maxQueueDelayMs?: number;
  readonly devices?: FakeDeviceOptions | ((deviceId: number, spawn: number) => FakeDeviceOptions);
  readonly restartPolicy?: RestartPolicy;
}

/** A DeviceGroup of fake devices and a ModelScheduler for one `add` graph over it. */
async function rig(t: { teardown(fn: () => unknown): void }, options: RigOptions = {}) {
  const fakes = fakeDevices(options.devices ?? {});
  const logs: string[] = [];
  let scheduler: ModelScheduler | undefined;
  const group = new DeviceGroup<FakeDevice>({
    label: 'servable fake',
    deviceIds: options.deviceIds ?? [0],
    spawn: fakes.factory,
    ...(options.restartPolicy ? { restartPolicy: options.restartPolicy } : {}),
    onCapacity: () => scheduler?.pump(),
    log: (line) => logs.push(line),
  });
  t.teardown(() => group.stop());
  await group.start();
  const declaration = {
    key: 'add.onnx',
    files: ['add.onnx'],
    withBatchDim: true,
    withoutBatchDimInputs: [],
    maxBatchSize: options.maxBatchSize ?? 8,
    maxQueueDelayMs: options.maxQueueDelayMs ?? 0,
  };
  const graph = group.graphs[0]?.[0];
  if (!graph) throw new Error('the fake devices loaded no graph');
  scheduler = new ModelScheduler(group, [[new BatchPlan(declaration, 0, graph)]]);
  const s = scheduler;
  return {
    group,
    scheduler: s,
    logs,
    devices: fakes.spawned,
    spawnedAt: fakes.spawnedAt,
    /** Queues instance `k` (x1 = k, k+1, k+2, k+3; x2 = 1000) for `request`. */
    submit: (k: number, request: RequestState = { done: false }) => s.submit(0, 0, [f32([k, k + 1, k + 2, k + 3]), f32([1000, 1000, 1000, 1000])], request),
  };
}

const expected = (k: number) => [k + 1000, k + 1001, k + 1002, k + 1003];
const values = (outputs: Tensor[]) => [...(outputs[0]?.data as Float32Array)];
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await sleep(1);
  if (!condition()) throw new Error(`timed out waiting until ${what}`);
}

/** The first x1 value of each instance (row) of a batch the device was sent. */
function rowsOf(device: FakeDevice, batch: number): number[] {
  const x1 = device.sent[batch]?.inputs[0];
  if (!x1 || !('parts' in x1)) throw new Error(`no numeric batch ${batch}`);
  return x1.parts.map((p) => Number(p[0]));
}

t.test('dynamic batches mix requests, never exceed maxBatchSize, and answer each request its own rows', async (t) => {
  const r = await rig(t, { maxBatchSize: 4 });
  const requests = [3, 3, 4].map((n, req) => Promise.all(Array.from({ length: n }, (_, i) => r.submit(req * 100 + i))));
  const results = await Promise.all(requests);
  results.forEach((outs, req) => outs.forEach((o, i) => t.same(values(o), expected(req * 100 + i), `request ${req} instance ${i}`)));
  const device = r.devices[0]!;
  const batches = device.sent.map((_, b) => rowsOf(device, b));
  t.same(batches.map((b) => b.length), [4, 4, 2], 'two full batches, then the rest once a slot freed');
  t.ok(batches.some((rows) => new Set(rows.map((k) => Math.floor(k / 100))).size > 1), 'a batch holds instances of several requests');
  t.same(Object.fromEntries(r.scheduler.stats.batchSizes), { 4: 2, 2: 1 });
  t.equal(r.scheduler.stats.instances, 10);
});

t.test('a fixed-batch model is padded to its batch size and the padding is dropped', async (t) => {
  const r = await rig(t, { devices: { graphs: [[addGraph(4)]] } });
  const outs = await Promise.all([1, 2, 3].map((k) => r.submit(k)));
  t.same(outs.map(values), [expected(1), expected(2), expected(3)], 'three answers, no padded extra');
  const device = r.devices[0]!;
  const x1 = device.sent[0]?.inputs[0];
  t.same(x1?.dims, [4, 2, 2], 'the batch has the fixed size');
  t.same(rowsOf(device, 0), [1, 2, 3, 1], 'the last row repeats the first instance');
  t.same(Object.fromEntries(r.scheduler.stats.batchSizes), { 3: 1 }, 'padding is not counted');
});

t.test('maxQueueDelayMs holds a partial batch for more instances; a full batch goes at once', async (t) => {
  const r = await rig(t, { maxQueueDelayMs: 30, maxBatchSize: 4 });
  const start = performance.now();
  const first = r.submit(0);
  await sleep(5);
  const later = [r.submit(1), r.submit(2)];
  await Promise.all([first, ...later]);
  const device = r.devices[0]!;
  t.same(rowsOf(device, 0), [0, 1, 2], 'one batch of all three');
  t.ok(device.sent[0]!.at - start >= 30, `sent after the delay (${(device.sent[0]!.at - start).toFixed(1)} ms)`);

  const slow = await rig(t, { maxQueueDelayMs: 60_000, maxBatchSize: 2 });
  const t0 = performance.now();
  await Promise.all([slow.submit(5), slow.submit(6)]);
  t.ok(performance.now() - t0 < 1_000, 'a full batch does not wait for the delay');
});

t.test('a batch whose device dies is retried once on another device', async (t) => {
  const r = await rig(t, { deviceIds: [0, 1], devices: { hold: true }, restartPolicy: { ...DEFAULT_RESTART_POLICY, initialBackoffMs: 60_000 } });
  const answer = r.submit(7);
  await until(() => r.devices.some((d) => d.outstanding > 0), 'a device runs the batch');
  const victim = r.devices.find((d) => d.outstanding > 0)!;
  const other = r.devices.find((d) => d !== victim)!;
  victim.die('boom');
  await until(() => other.outstanding > 0, 'the other device got the batch');
  other.answerHeld();
  t.same(values(await answer), expected(7), 'answered by the other device');
  t.equal(r.scheduler.stats.retried, 1);
  t.same(Object.fromEntries(r.scheduler.stats.batchesByDevice), { 0: 1, 1: 1 });
  t.match(r.logs, [new RegExp(`device actor ${victim.deviceId} died \\(boom\\)`)]);
});

t.test('a batch whose device dies twice fails with E_ACTOR_DIED', async (t) => {
  const r = await rig(t, { deviceIds: [0, 1], devices: { hold: true }, restartPolicy: { ...DEFAULT_RESTART_POLICY, initialBackoffMs: 60_000 } });
  const answer = r.submit(1);
  await until(() => r.devices.some((d) => d.outstanding > 0), 'a device runs the batch');
  r.devices.find((d) => d.outstanding > 0)!.die();
  await until(() => r.devices.some((d) => d.state === 'ready' && d.outstanding > 0), 'the retry runs');
  r.devices.find((d) => d.state === 'ready')!.die();
  await t.rejects(answer, { code: 'E_ACTOR_DIED', message: /already retried once, giving up/ });
  t.ok(r.group.available, 'the devices are restarting, not given up');
});

t.test('a model error fails the batch without a retry', async (t) => {
  const r = await rig(t, { deviceIds: [0, 1], devices: { failRuns: 'bad input' } });
  await t.rejects(Promise.all([r.submit(1), r.submit(2)]), { code: 'E_MODEL_FAILED', message: 'bad input' });
  t.equal(r.scheduler.stats.retried, 0);
  t.equal(r.devices.length, 2, 'no device was replaced');
});

t.test('batches go to the device with the least outstanding work', async (t) => {
  const r = await rig(t, { deviceIds: [0, 1, 2], maxBatchSize: 1, devices: { hold: true } });
  const answers = [1, 2, 3].map((k) => r.submit(k));
  await until(() => r.devices.every((d) => d.outstanding === 1), 'each device holds one batch');
  answers.push(...[4, 5, 6].map((k) => r.submit(k)));
  await until(() => r.devices.every((d) => d.outstanding === 2), 'each device holds two batches');
  for (const d of r.devices) d.answerHeld();
  t.same((await Promise.all(answers)).map(values), [1, 2, 3, 4, 5, 6].map(expected));
});

t.test('a dead device is restarted; work queued meanwhile runs on the new one', async (t) => {
  const r = await rig(t, { restartPolicy: { initialBackoffMs: 1, maxBackoffMs: 4, maxFailedRestarts: 3 } });
  r.devices[0]!.die('boom');
  t.equal(r.group.liveCount, 0);
  const answer = r.submit(3);
  t.same(values(await answer), expected(3), 'served once the device came back');
  t.equal(r.devices.length, 2, 'one new device');
  t.equal(r.group.restarts, 1);
  t.same(r.logs, ['servable fake: device actor 0 died (boom)', 'servable fake: device actor 0 restarted']);
});

t.test('restarts that fail back off exponentially, then the device is given up and work fails E_UNAVAILABLE', async (t) => {
  t.same(
    [0, 1, 2, 3, 4, 5, 6].map((n) => restartDelayMs(DEFAULT_RESTART_POLICY, n)),
    [100, 200, 400, 800, 1600, 3200, 5000],
    'the default policy: 100 ms doubling to 5 s',
  );
  const policy = { initialBackoffMs: 4, maxBackoffMs: 16, maxFailedRestarts: 4 };
  const r = await rig(t, { restartPolicy: policy, devices: (_id, spawn) => (spawn === 0 ? {} : { failLoad: 'no such file' }) });
  const diedAt = performance.now();
  r.devices[0]!.die('boom');
  const waiting = r.submit(1);
  await t.rejects(waiting, { code: 'E_UNAVAILABLE' }, 'queued work fails once the device is given up');
  t.notOk(r.group.available);
  await t.rejects(r.submit(2), { code: 'E_UNAVAILABLE' }, 'new work is refused');
  const times = [diedAt, ...r.spawnedAt.slice(1)];
  const gaps = times.slice(1).map((at, i) => at - times[i]!);
  t.equal(gaps.length, 4, 'four restarts tried');
  [4, 8, 16, 16].forEach((delay, i) => t.ok(gaps[i]! >= delay - 1, `restart ${i + 1} waited ${gaps[i]!.toFixed(1)} ms (>= ${delay})`));
  t.same(r.logs, [
    'servable fake: device actor 0 died (boom)',
    ...[1, 2, 3, 4].map(() => 'servable fake: restarting device actor 0 failed: device 0: no such file'),
    'servable fake: device actor 0 failed 4 restarts in a row; giving it up',
  ]);
});

t.test('close answers queued work with its error and refuses new work; batches in flight finish', async (t) => {
  const r = await rig(t, { maxBatchSize: 1, devices: { hold: true, slots: 1 } });
  const running = r.submit(1);
  const queued = r.submit(2);
  await until(() => r.devices[0]!.outstanding === 1, 'the first batch runs');
  r.scheduler.close(new ServingError('E_STOPPED', 'servable fake is stopping'));
  await t.rejects(queued, { code: 'E_STOPPED', message: 'servable fake is stopping' });
  await t.rejects(r.submit(3), { code: 'E_STOPPED' });
  r.devices[0]!.answerHeld();
  t.same(values(await running), expected(1));
  t.equal(r.scheduler.queued, 0);
});

t.test('tasks of requests that already ended are dropped before they reach a device', async (t) => {
  const r = await rig(t, { maxBatchSize: 4, devices: { hold: true, slots: 1 } });
  const first = r.submit(1);
  await until(() => r.devices[0]!.outstanding === 1, 'the first batch runs');
  const ended: RequestState = { done: false };
  let settled = false;
  void r.submit(20, ended).finally(() => (settled = true));
  const live = r.submit(30);
  void r.submit(21, ended).finally(() => (settled = true));
  ended.done = true; // its deadline passed: the request was answered elsewhere
  r.devices[0]!.answerHeld();
  await first;
  await until(() => r.devices[0]!.sent.length === 2, 'the next batch was sent');
  r.devices[0]!.answerHeld();
  t.same(values(await live), expected(30));
  t.same(rowsOf(r.devices[0]!, 1), [30], 'only the live request ran');
  await tick();
  t.notOk(settled, 'dropped tasks are not answered again');
  t.equal(r.scheduler.stats.instances, 2);
});

t.test('a group whose device cannot load fails to start and stops the devices that did', async (t) => {
  const fakes = fakeDevices((deviceId) => (deviceId === 1 ? { failLoad: 'broken.onnx is not a model' } : {}));
  const group = new DeviceGroup<FakeDevice>({ label: 'servable fake', deviceIds: [0, 1], spawn: fakes.factory, onCapacity: () => {}, log: () => {} });
  await t.rejects(group.start(), { code: 'E_LOAD_FAILED', message: 'device 1: broken.onnx is not a model' });
  t.same(fakes.spawned.map((d) => d.state), ['dead', 'dead'], 'the device that loaded was stopped');
  t.notOk(group.available, 'a group that failed to start is not available');
});
