// The stage worker's side of its thread protocol, spoken to directly over piscina: the version
// check, the announcement of its control port, and control calls over that port.
import t from 'tap';
import path from 'node:path';
import { Piscina } from 'piscina';
import { wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { STAGE_PROTOCOL_VERSION } from '../../dist/actors/stage-protocol.js';
import type { RunStageTask, StageResult, StageTask, StageWorkerAnnouncement, StageWorkerControl } from '../../dist/actors/stage-protocol.js';
import { StageWorkerLink, StageWorkerLinks } from '../../dist/actors/stage-worker-links.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const WORKER = new URL('../../dist/actors/stage-worker.js', import.meta.url).href;

const fx = servableFixture('stage-protocol');
fx.config(
  'funcs',
  `export async function slowDouble(x: { dtype: 'float32'; shape: number[]; data: Float32Array }) {
  await new Promise((r) => setTimeout(r, 200));
  return { dtype: 'float32', shape: x.shape, data: x.data.map((v) => v * 2) };
}`,
);
const configPath = path.join(fx.dir, 'funcs', 'servable_config.ts');
t.teardown(() => fx.remove());

function workerPool(protocolVersion: number): Piscina<StageTask, StageResult> {
  return new Piscina({
    filename: WORKER,
    workerData: { protocolVersion, ended: new SharedArrayBuffer(4), modelCalls: 'posted' },
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: 4,
    atomics: 'disabled',
  });
}

const announcement = (pool: Piscina) => new Promise<StageWorkerAnnouncement>((resolve) => pool.once('message', resolve));

const task = (instances: RunStageTask['instances']): RunStageTask => ({
  kind: 'run',
  configPath,
  functionName: 'slowDouble',
  tag: "Function 'slowDouble'",
  outputsCount: 1,
  batched: false,
  instances,
});

t.test('a worker whose pool speaks another protocol version refuses, with both versions in the reason', async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION + 1);
  t.teardown(() => pool.destroy());
  const said = await announcement(pool);
  t.equal(said.kind, 'stage-worker.refused');
  t.equal(said.protocolVersion, STAGE_PROTOCOL_VERSION);
  const mismatch = new RegExp(`stage protocol mismatch: the stage pool speaks version ${STAGE_PROTOCOL_VERSION + 1}, this stage worker .* speaks version ${STAGE_PROTOCOL_VERSION}`);
  t.match((said as { reason: string }).reason, mismatch);
  await t.rejects(pool.run(task([[f32([1, 2, 3, 4])]])), { message: mismatch }, 'and it runs no task');
});

t.test('the pool side: StageWorkerLinks.ready fails with the refusal instead of waiting', async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION + 1);
  t.teardown(() => pool.destroy());
  const links = new StageWorkerLinks(pool, 1);
  await t.rejects(links.ready(30_000), { code: 'E_INTERNAL', message: /stage protocol mismatch/ });
});

t.test('StageWorkerLinks.ready gives up once the links are closed (a start abandoned meanwhile leaves no timer behind)', async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION);
  t.teardown(() => pool.destroy());
  const links = new StageWorkerLinks(pool, 2); // the pool keeps 1 thread: ready() alone would wait out its timeout
  const waiting = links.ready(600_000);
  setImmediate(() => links.close());
  await t.rejects(waiting, { code: 'E_LOAD_FAILED', message: /closed before they all started/ });
});

t.test('a worker of the same version announces its control port and answers over it', async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION);
  t.teardown(() => pool.destroy());
  const said = await announcement(pool);
  t.equal(said.kind, 'stage-worker.ready');
  if (said.kind !== 'stage-worker.ready') return;
  t.equal(said.threadId, pool.threads[0]!.threadId, 'it names its own thread');
  const control = wrap<StageWorkerControl>(nodeEndpoint(said.control));
  t.teardown(() => said.control.close());

  t.same(await control.load(configPath), { kind: 'ok', value: null });
  const health = await control.health();
  t.match(health, { threadId: said.threadId, protocolVersion: STAGE_PROTOCOL_VERSION, state: 'running', tasksInFlight: 0 });

  const [out] = await pool.run(task([[f32([1, 2, 3, 4])]]));
  t.same(out!.kind === 'outputs' ? [...(out!.outputs[0]!.data as Float32Array)] : out, [2, 4, 6, 8]);
  t.match(await control.stats(), { tasksRun: 1, instancesRun: 1, instancesFailed: 0, modulesLoaded: [configPath] });

  const missing = await control.load(path.join(fx.dir, 'nowhere', 'servable_config.ts'));
  t.equal(missing.kind, 'error', 'a config that cannot be imported is an error reply, code kept');
  t.equal(missing.kind === 'error' && missing.error.code, 'E_LOAD_FAILED');
});

t.test('a draining worker finishes its tasks in flight and refuses new ones with E_STOPPED', async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION);
  t.teardown(() => pool.destroy());
  const said = await announcement(pool);
  if (said.kind !== 'stage-worker.ready') {
    t.fail(said.kind);
    return;
  }
  const control = wrap<StageWorkerControl>(nodeEndpoint(said.control));
  t.teardown(() => said.control.close());

  const running = pool.run(task([[f32([1, 1, 1, 1])]]));
  await new Promise((r) => setTimeout(r, 50)); // the task is on the thread
  const drained = control.drain();
  t.equal((await control.health()).state, 'draining');
  const [late] = await pool.run(task([[f32([1, 1, 1, 1])]]));
  t.match(late, { kind: 'error', error: { code: 'E_STOPPED' } }, 'a task after drain() is refused');
  const [first] = await running;
  t.equal(first!.kind, 'outputs', 'the task in flight finished');
  t.match(await drained, { tasksRun: 1, instancesRun: 1 }, 'drain answers once it has, with the final stats');
});

t.test("a control call to a thread that has exited fails instead of waiting forever", async (t) => {
  const pool = workerPool(STAGE_PROTOCOL_VERSION);
  const said = await announcement(pool);
  if (said.kind !== 'stage-worker.ready') {
    t.fail(said.kind);
    return;
  }
  const link = new StageWorkerLink(said.threadId, said.control);
  t.equal((await link.health()).threadId, said.threadId);
  await pool.destroy();
  await t.rejects(link.health(), { code: 'E_STAGE_FAILED', message: `stage thread ${said.threadId} has exited` });
});
