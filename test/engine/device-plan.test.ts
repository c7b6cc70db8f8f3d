// The device plan (engine/device-plan.ts): device actors × intra-op threads chosen from the core
// count and the model's measured cost when the user names neither; what the user names wins.
import t from 'tap';
import {
  MAIN_THREAD_US_PER_REQUEST,
  computeCores,
  describePlan,
  needsCost,
  planDevices,
  splitCores,
} from '../../dist/engine/device-plan.js';

const GB = 2 ** 30;
/** A CPU servable whose user named nothing, on `cores` cores, one instance taking `instanceMs`. */
const auto = (cores: number, instanceMs: number | undefined, extra: Partial<Parameters<typeof planDevices>[0]> = {}) =>
  planDevices({ cores, instanceMs, modelBytes: 1_000_000, freeMemoryBytes: 16 * GB, deviceType: 'cpu', deviceIds: undefined, intraOpThreads: undefined, ...extra });
const shape = (p: ReturnType<typeof planDevices>) => [p.deviceIds.length, p.intraOpThreads];

t.test('a tiny model (add: a few µs per instance) gets 1 actor × 1 thread on any core count', async (t) => {
  for (const cores of [1, 2, 8, 64]) t.same(shape(auto(cores, 0.006)), [1, 1], `${cores} cores`);
  t.same(auto(2, 0.006).deviceIds, [0]);
  t.match(auto(2, 0.006).reason, /^auto: 2 cores, one instance 6 µs on 1 thread → 1 core of compute$/);
});

t.test('a compute-heavy model (the CNN: ms per instance) uses every core, actors first', async (t) => {
  t.same(shape(auto(1, 2.5)), [1, 1], '1 core');
  t.same(shape(auto(2, 2.5)), [2, 1], '2 cores: 2 actors × 1 thread');
  t.same(auto(2, 2.5).deviceIds, [0, 1]);
  t.same(shape(auto(4, 2.5)), [4, 1]);
  t.same(shape(auto(6, 2.5)), [3, 2], '6 cores: every core, no more than 4 actors');
  t.same(shape(auto(7, 2.5)), [1, 7], '7 cores: the split that uses every core');
  t.same(shape(auto(8, 2.5)), [4, 2]);
  t.same(shape(auto(16, 2.5)), [4, 4]);
  t.same(shape(auto(64, 2.5)), [2, 25], '50 cores of compute (2.5 ms / 50 µs) on 64: 2 × 25');
  t.match(auto(8, 2.5, { measuredBatch: 8 }).reason, /auto: 8 cores, one instance 2\.50 ms on 1 thread \(in a batch of 8\) → 8 cores of compute/);
});

t.test('a model in between gets the cores its cost over the main thread cost asks for', async (t) => {
  const us = MAIN_THREAD_US_PER_REQUEST;
  t.equal(computeCores(us / 1000, 16), 1, 'as fast as the main thread: one core');
  t.equal(computeCores((us + 1) / 1000, 16), 2, 'a bit slower: two');
  t.equal(computeCores(0.12, 16), 3);
  t.equal(computeCores(0.12, 2), 2, 'never more than the cores');
  t.equal(computeCores(undefined, 16), 1, 'unknown: one');
  t.same(shape(auto(8, 0.12)), [3, 1], '3 cores of compute: 3 actors × 1 thread');
});

t.test('splitting cores: the most cores used, ties to more actors', async (t) => {
  t.same(splitCores(1, 4), { actors: 1, threads: 1 });
  t.same(splitCores(2, 4), { actors: 2, threads: 1 });
  t.same(splitCores(5, 4), { actors: 1, threads: 5 });
  t.same(splitCores(12, 4), { actors: 4, threads: 3 });
  t.same(splitCores(12, 1), { actors: 1, threads: 12 });
});

t.test('model copies are capped by free memory', async (t) => {
  const p = auto(16, 20, { modelBytes: 1.5 * GB, freeMemoryBytes: 8 * GB });
  t.same(shape(p), [1, 16], 'a quarter of 8 GiB holds one 1.5 GiB copy');
  t.match(p.reason, /1 model copy fit in 25 % of free memory/);
  t.same(shape(auto(16, 20, { modelBytes: 1 * GB, freeMemoryBytes: 8 * GB })), [2, 8]);
});

t.test('a cost that could not be measured counts as cheap (the old default)', async (t) => {
  const p = auto(8, undefined, { unmeasured: "m.onnx: input 's' is string" });
  t.same(shape(p), [1, 1]);
  t.match(p.reason, /cost not measured \(m\.onnx: input 's' is string\): counted as cheap/);
});

t.test('what the user names wins; the rest fills the cores', async (t) => {
  const both = planDevices({ cores: 8, instanceMs: 2.5, modelBytes: 1, freeMemoryBytes: GB, deviceType: 'cpu', deviceIds: [3], intraOpThreads: 2 });
  t.same([both.deviceIds, both.intraOpThreads, both.reason], [[3], 2, 'as configured']);
  const ids = auto(8, 2.5, { deviceIds: [0, 1] });
  t.same([ids.deviceIds, ids.intraOpThreads], [[0, 1], 4], 'named ids: threads fill the cores among them');
  t.match(ids.reason, /device ids as configured$/);
  t.same(shape(auto(8, 0.006, { deviceIds: [0, 1] })), [2, 1], 'a tiny model with two named actors: 1 thread each');
  const threads = auto(8, 2.5, { intraOpThreads: 2 });
  t.same([threads.deviceIds, threads.intraOpThreads], [[0, 1, 2, 3], 2], 'named threads: actors fill the cores');
  t.same(shape(auto(2, 2.5, { intraOpThreads: 4 })), [1, 4], 'named threads beyond the cores: still one actor');
  t.same(shape(auto(64, 2.5, { intraOpThreads: 2 })), [4, 2], 'at most 4 actors');
});

t.test('CUDA servables are not planned: device 0, one thread, unless named', async (t) => {
  t.notOk(needsCost('cuda', undefined, undefined));
  t.ok(needsCost('cpu', [0], undefined));
  t.ok(needsCost('cpu', undefined, 1));
  t.notOk(needsCost('cpu', [0], 1));
  const p = auto(8, undefined, { deviceType: 'cuda' });
  t.same([p.deviceIds, p.intraOpThreads], [[0], 1]);
  t.same(auto(8, undefined, { deviceType: 'cuda', deviceIds: [1, 2] }).deviceIds, [1, 2]);
});

t.test('the startup log words', async (t) => {
  t.equal(describePlan(auto(2, 2.5)), '2 device actors × 1 intra-op thread (auto: 2 cores, one instance 2.50 ms on 1 thread → 2 cores of compute)');
  t.equal(describePlan(auto(8, 25)), '4 device actors × 2 intra-op threads (auto: 8 cores, one instance 25 ms on 1 thread → 8 cores of compute)');
});
