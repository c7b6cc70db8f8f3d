/**
 * Stage worker entry (a piscina thread). Its default export answers the pool's tasks
 * (stage-runner.ts runs them); when the module is evaluated it checks the pool's protocol
 * version and announces its control plane (StageWorkerControl over comlink) on `parentPort`.
 */
import { MessageChannel, parentPort, threadId } from 'node:worker_threads';
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { ServingError, toServingError } from '../engine/errors.js';
import { runWithModelBridge } from '../engine/register.js';
import { modelCallsOver } from './stage-model-calls.js';
import {
  STAGE_PROTOCOL_VERSION,
  type InstanceResult,
  type RunStageTask,
  type StageResult,
  type StreamStageTask,
  type StageTask,
  type StageWorkerAnnouncement,
  type StageWorkerControl,
  type StageWorkerData,
  type StageWorkerStats,
} from './stage-protocol.js';
import { type RunCounts, loadModule, modulesLoaded, runStageTask } from './stage-runner.js';

const data = workerData as StageWorkerData;

/** Set when the pool speaks another protocol version: this thread then runs nothing. */
const refusal =
  data.protocolVersion === STAGE_PROTOCOL_VERSION
    ? undefined
    : `stage protocol mismatch: the stage pool speaks version ${String(data.protocolVersion)}, this stage worker (${import.meta.url}) speaks version ${STAGE_PROTOCOL_VERSION}`;

const ended = refusal ? new Int32Array(0) : new Int32Array(data.ended);
const startedAt = performance.now();
const counts: RunCounts = { run: 0, failed: 0, skipped: 0 };
let tasksRun = 0;
let modelCalls = 0;
let tasksInFlight = 0;
let draining = false;
/** Resolved (and emptied) when the last task in flight ends. */
let idleWaiters: (() => void)[] = [];

function stats(): StageWorkerStats {
  return {
    threadId,
    tasksRun,
    instancesRun: counts.run,
    instancesFailed: counts.failed,
    instancesSkipped: counts.skipped,
    modelCalls,
    modulesLoaded: modulesLoaded(),
  };
}

const control: StageWorkerControl = {
  async load(configPath) {
    try {
      await loadModule(configPath);
      return { kind: 'ok', value: null };
    } catch (err) {
      return { kind: 'error', error: toServingError(err, 'E_LOAD_FAILED').toData() };
    }
  },
  health: () => ({
    threadId,
    protocolVersion: STAGE_PROTOCOL_VERSION,
    state: draining ? 'draining' : 'running',
    tasksInFlight,
    uptimeMs: performance.now() - startedAt,
  }),
  stats,
  async drain() {
    draining = true;
    while (tasksInFlight > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
    return stats();
  },
};

function announce(port: NonNullable<typeof parentPort>): void {
  if (refusal) {
    port.postMessage({ kind: 'stage-worker.refused', protocolVersion: STAGE_PROTOCOL_VERSION, threadId, reason: refusal } satisfies StageWorkerAnnouncement);
    return;
  }
  const channel = new MessageChannel();
  expose(control, nodeEndpoint(channel.port1));
  channel.port1.unref(); // piscina's own port keeps this thread alive; the control port must not
  port.postMessage(
    { kind: 'stage-worker.ready', protocolVersion: STAGE_PROTOCOL_VERSION, threadId, control: channel.port2 } satisfies StageWorkerAnnouncement,
    [channel.port2],
  );
}

if (!parentPort) throw new Error('stage-worker.js is the entry of a stage pool thread; it cannot run on the main thread');
announce(parentPort);

const STOPPED: InstanceResult = { kind: 'error', error: { code: 'E_STOPPED', message: 'the stage thread is draining: it takes no new tasks' } };

export default async function runStage(task: StageTask): Promise<StageResult> {
  try {
    if (refusal) throw new ServingError('E_INTERNAL', refusal);
    switch (task.kind) {
      case 'run':
        return draining ? task.instances.map(() => STOPPED) : await run(task);
      case 'stream':
        return draining ? [STOPPED] : await run(task);
      default:
        throw new ServingError('E_INTERNAL', `stage worker: unknown task kind '${String((task as { kind?: unknown }).kind)}'`);
    }
  } finally {
    task.modelCalls?.close();
  }
}

async function run(task: RunStageTask | StreamStageTask): Promise<StageResult> {
  tasksInFlight++;
  try {
    const bridge = modelCallsOver(task.modelCalls, data.modelCalls, () => modelCalls++);
    const requestEnded = (): boolean => task.endedFlag !== undefined && Atomics.load(ended, task.endedFlag) === 1;
    return movable(await runWithModelBridge(bridge, () => runStageTask(task, requestEnded, counts)));
  } finally {
    tasksRun++;
    if (--tasksInFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}

/**
 * Hands the result back with its output buffers transferred, not copied (a preprocessed
 * image is ~600 KB). Only buffers a tensor owns whole are moved; views into shared pools
 * are copied as usual.
 */
function movable(result: StageResult): StageResult {
  const buffers = new Set<ArrayBuffer>();
  for (const r of result) {
    if (r.kind !== 'outputs') continue;
    for (const t of r.outputs) {
      const d = t.data;
      if (ArrayBuffer.isView(d) && d.buffer instanceof ArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.byteLength >= 4096) {
        buffers.add(d.buffer);
      }
    }
  }
  if (buffers.size === 0) return result;
  return move({ [transferableSymbol]: [...buffers], [valueSymbol]: result }) as unknown as StageResult;
}
