/**
 * Runs one stage task inside a stage worker: imports the servable's config module once per
 * config file and calls its exported stage function on the task's instances. Per-instance
 * functions fail one instance at a time; a batched function that throws fails its whole batch.
 *
 * Error codes: a ServingError the function throws keeps its code and message (a stage rejects
 * a client's input with `throw new ServingError('E_INVALID_ARGUMENT', ...)`: a 400); any other
 * throw, and a result that is not a well-formed tensor, is E_STAGE_FAILED (a 500). The code
 * crosses back to the supervisor as data (stage-protocol.ts InstanceResult).
 *
 * Each call of the function runs in its own model-call scope (engine/register.ts): the
 * sequences its `model.call`s started and did not end are ended when it returns or throws.
 */
import { importConfigModule } from '../engine/config-loader.js';
import { ServingError, toServingError } from '../engine/errors.js';
import { runInModelCallScope } from '../engine/register.js';
import { type Tensor, toTensor } from '../engine/tensor.js';
import type { InstanceResult, RunStageTask, StageResult } from './stage-protocol.js';

/** Per-instance counts of one task, for the worker's stats. */
export interface RunCounts {
  run: number;
  failed: number;
  skipped: number;
}

const modules = new Map<string, Promise<Record<string, unknown>>>();
const loaded = new Set<string>();

/** Imports `configPath` once per thread; a failed import is tried again by the next task. */
export function loadModule(configPath: string): Promise<Record<string, unknown>> {
  let m = modules.get(configPath);
  if (!m) {
    m = importConfigModule(configPath);
    modules.set(configPath, m);
    m.then(
      () => loaded.add(configPath),
      () => modules.delete(configPath),
    );
  }
  return m;
}

/** Config modules this thread has imported. */
export function modulesLoaded(): string[] {
  return [...loaded];
}

const SKIPPED: InstanceResult = { kind: 'error', error: { code: 'E_CANCELLED', message: 'skipped: the request had ended before this stage ran' } };

/**
 * Runs `task`; `requestEnded()` says whether its request was answered already (deadline,
 * cancel), checked before each instance so that work nobody waits for is skipped.
 */
export async function runStageTask(task: RunStageTask, requestEnded: () => boolean, counts: RunCounts): Promise<StageResult> {
  const results = await runInstances(task, requestEnded);
  for (const r of results) {
    if (r === SKIPPED) counts.skipped++;
    else if (r.kind === 'error') counts.failed++;
    else counts.run++;
  }
  return results;
}

async function runInstances(task: RunStageTask, requestEnded: () => boolean): Promise<StageResult> {
  const mod = await loadModule(task.configPath);
  const exported = mod[task.functionName];
  if (typeof exported !== 'function') {
    throw new ServingError('E_STAGE_FAILED', `${task.tag}: '${task.functionName}' is not an exported function of ${task.configPath}`);
  }
  const fn = exported as (...args: unknown[]) => unknown;
  if (requestEnded()) return task.instances.map(() => SKIPPED);
  if (!task.batched) {
    const results: InstanceResult[] = [];
    for (const inputs of task.instances) {
      if (requestEnded()) {
        results.push(SKIPPED);
        continue;
      }
      try {
        results.push({ kind: 'outputs', outputs: outputsOf(await runInModelCallScope(() => fn(...inputs)), task) });
      } catch (err) {
        results.push(failure(err, task));
      }
    }
    return results;
  }
  let returned: unknown;
  try {
    returned = await runInModelCallScope(() => fn(task.instances.map((i) => [...i])));
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
      return { kind: 'outputs', outputs: outputsOf(list[i], task) };
    } catch (err) {
      return failure(err, task);
    }
  });
}

/** Normalises what a function returned for one instance into `outputsCount` tensors. */
function outputsOf(value: unknown, task: RunStageTask): Tensor[] {
  const list = task.outputsCount === 1 && !Array.isArray(value) ? [value] : value;
  if (!Array.isArray(list) || list.length !== task.outputsCount) {
    throw new ServingError(
      'E_STAGE_FAILED',
      `${task.tag} must return ${task.outputsCount} value${task.outputsCount > 1 ? 's (an array)' : ''}, got ${Array.isArray(value) ? `${value.length} values` : typeof value}`,
    );
  }
  return list.map((v, i) => {
    try {
      return toTensor(v, `${task.tag} output ${i}`);
    } catch (err) {
      // A malformed returned tensor is the servable's bug, whatever check caught it (a shape
      // that does not fit its data reads E_INVALID_SHAPE there): a 500, never a client error.
      throw new ServingError('E_STAGE_FAILED', toServingError(err).message);
    }
  });
}

function failure(err: unknown, task: RunStageTask): InstanceResult {
  const e = toServingError(err, 'E_STAGE_FAILED');
  const message = err instanceof ServingError ? e.message : `${task.tag} failed: ${e.message}`;
  return { kind: 'error', error: { code: e.code, message } };
}
