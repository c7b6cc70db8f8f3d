/**
 * Stage worker (a piscina thread): imports the servable's config module once per config
 * file and runs its exported stage functions on batches of instances. Per-instance functions
 * fail one instance at a time; a batched function that throws fails its whole batch.
 */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { importConfigModule } from '../engine/config-loader.js';
import { ServingError, toServingError } from '../engine/errors.js';
import { type ModelCallBridge, runWithModelBridge } from '../engine/register.js';
import { type Tensor, toTensor } from '../engine/tensor.js';
import type { ModelCallReply, ModelCallRequest, StageResult, StageTask, StageWorkerData } from './stage-protocol.js';

const modules = new Map<string, Promise<Record<string, unknown>>>();
const ended = new Int32Array((workerData as StageWorkerData).ended);

/** The task's request was answered already (deadline, cancel): its work would be thrown away. */
function requestEnded(task: StageTask): boolean {
  return task.endedFlag !== undefined && Atomics.load(ended, task.endedFlag) === 1;
}

const SKIPPED: StageResult[number] = { error: { code: 'E_CANCELLED', message: 'skipped: the request had ended before this stage ran' } };

function loadModule(configPath: string): Promise<Record<string, unknown>> {
  let m = modules.get(configPath);
  if (!m) {
    m = importConfigModule(configPath);
    modules.set(configPath, m);
    m.catch(() => modules.delete(configPath));
  }
  return m;
}

function bridgeOver(task: StageTask): ModelCallBridge {
  const port = task.port;
  const waiting = new Map<number, { resolve(v: Tensor[][]): void; reject(e: ServingError): void }>();
  let nextId = 1;
  port?.on('message', (reply: ModelCallReply) => {
    const w = waiting.get(reply.id);
    if (!w) return;
    waiting.delete(reply.id);
    if ('error' in reply) w.reject(ServingError.fromData(reply.error));
    else w.resolve(reply.outputs as Tensor[][]);
  });
  return (modelKey, subgraph, instances) => {
    if (!port) return Promise.reject(new ServingError('E_INTERNAL', 'model.call is not available to this stage'));
    const id = nextId++;
    const request: ModelCallRequest = { id, modelKey, subgraph, instances };
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      port.postMessage(request);
    });
  };
}

/** Normalises what a function returned for one instance into `outputsCount` tensors. */
function outputsOf(value: unknown, task: StageTask): Tensor[] {
  const list = task.outputsCount === 1 && !Array.isArray(value) ? [value] : value;
  if (!Array.isArray(list) || list.length !== task.outputsCount) {
    throw new ServingError(
      'E_STAGE_FAILED',
      `${task.tag} must return ${task.outputsCount} value${task.outputsCount > 1 ? 's (an array)' : ''}, got ${Array.isArray(value) ? `${value.length} values` : typeof value}`,
    );
  }
  return list.map((v, i) => toTensor(v, `${task.tag} output ${i}`));
}

function failure(err: unknown, task: StageTask): { error: { code: ServingError['code']; message: string } } {
  const e = toServingError(err, 'E_STAGE_FAILED');
  const message = err instanceof ServingError ? e.message : `${task.tag} failed: ${e.message}`;
  return { error: { code: e.code, message } };
}

async function runTask(task: StageTask): Promise<StageResult> {
  const mod = await loadModule(task.configPath);
  if (task.warmup) return [];
  const fn = mod[task.functionName];
  if (typeof fn !== 'function') {
    throw new ServingError('E_STAGE_FAILED', `${task.tag}: '${task.functionName}' is not an exported function of ${task.configPath}`);
  }
  if (requestEnded(task)) return task.instances.map(() => SKIPPED);
  if (!task.batched) {
    const results: StageResult[number][] = [];
    for (const inputs of task.instances) {
      if (requestEnded(task)) {
        results.push(SKIPPED);
        continue;
      }
      try {
        results.push({ outputs: outputsOf(await fn(...inputs), task) });
      } catch (err) {
        results.push(failure(err, task));
      }
    }
    return results;
  }
  let returned: unknown;
  try {
    returned = await fn(task.instances.map((i) => [...i]));
  } catch (err) {
    const f = failure(err, task);
    return task.instances.map(() => f);
  }
  const list = returned !== null && typeof returned === 'object' && Symbol.iterator in returned ? [...(returned as Iterable<unknown>)] : undefined;
  if (!list || list.length < task.instances.length) {
    const f = failure(
      new ServingError('E_STAGE_FAILED', `${task.tag} must return one result per instance (${task.instances.length}), got ${list ? list.length : typeof returned}`),
      task,
    );
    return task.instances.map(() => f);
  }
  return task.instances.map((_, i) => {
    try {
      return { outputs: outputsOf(list[i], task) };
    } catch (err) {
      return failure(err, task);
    }
  });
}

/**
 * Hands the result back with its output buffers transferred, not copied (a preprocessed
 * image is ~600 KB). Only buffers a tensor owns whole are moved; views into shared pools
 * are copied as usual.
 */
function movable(result: StageResult): StageResult {
  const buffers = new Set<ArrayBuffer>();
  for (const r of result) {
    if (!('outputs' in r)) continue;
    for (const t of r.outputs) {
      const d = t.data;
      if (ArrayBuffer.isView(d) && d.buffer instanceof ArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.byteLength >= 4096) {
        buffers.add(d.buffer);
      }
    }
  }
  if (buffers.size === 0) return result;
  return move({ [transferableSymbol]: [...buffers], [valueSymbol]: result } as never) as unknown as StageResult;
}

export default async function runStage(task: StageTask): Promise<StageResult> {
  try {
    return movable(await runWithModelBridge(bridgeOver(task), () => runTask(task)));
  } finally {
    task.port?.close();
  }
}
