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
import { type StreamContext, openModelCallScope, runInModelCallScope } from '../engine/register.js';
import { type Tensor, describeValue, toTensor } from '../engine/tensor.js';
import { type InstanceResult, type RunStageTask, STREAM_CREDIT, type StageResult, type StreamControl, type StreamPartial, type StreamStageTask } from './stage-protocol.js';

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
export async function runStageTask(task: RunStageTask | StreamStageTask, requestEnded: () => boolean, counts: RunCounts): Promise<StageResult> {
  const results = task.kind === 'stream' ? [await runStream(task, requestEnded)] : await runInstances(task, requestEnded);
  for (const r of results) {
    if (r === SKIPPED) counts.skipped++;
    else if (r.kind === 'error') counts.failed++;
    else counts.run++;
  }
  return results;
}

async function stageFunction(task: RunStageTask | StreamStageTask): Promise<(...args: unknown[]) => unknown> {
  const mod = await loadModule(task.configPath);
  const exported = mod[task.functionName];
  if (typeof exported !== 'function') {
    throw new ServingError('E_STAGE_FAILED', `${task.tag}: '${task.functionName}' is not an exported function of ${task.configPath}`);
  }
  return exported as (...args: unknown[]) => unknown;
}

async function runInstances(task: RunStageTask, requestEnded: () => boolean): Promise<StageResult> {
  const fn = await stageFunction(task);
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

/**
 * Runs one instance through a stream stage: posts each value the generator yields on
 * `task.partials`, and does not advance the generator while STREAM_CREDIT partials are
 * unconsumed (credit comes back as the request's reader takes them). When the request ends
 * (a 'cancel' message, or its ended flag), `ctx.signal` aborts and the generator is stopped at
 * its next step: `return()` is called, so its `finally` runs.
 */
async function runStream(task: StreamStageTask, requestEnded: () => boolean): Promise<InstanceResult> {
  const fn = await stageFunction(task);
  if (requestEnded()) return SKIPPED;
  const abort = new AbortController();
  let credit = STREAM_CREDIT;
  let wake: (() => void) | undefined;
  task.partials.on('message', (m: StreamControl) => {
    if (m.kind === 'credit') credit += m.count;
    else abort.abort();
    wake?.();
  });
  const stopped = (): boolean => abort.signal.aborted || requestEnded();
  // The instance's model-call scope: each step runs in it, and closing it (once the generator
  // has ended or been stopped) ends the sequences the generator started and did not end.
  const scope = openModelCallScope();
  const inScope = <T>(step: () => T): T => (scope ? scope.run(step) : step());
  let partials = 0;
  let it: AsyncIterator<unknown> | undefined;
  try {
    const ctx: StreamContext = { parameters: Object.freeze({ ...task.parameters }), signal: abort.signal };
    const returned = inScope(() => fn(...task.inputs, ctx));
    if (!isAsyncIterator(returned)) {
      throw new ServingError('E_STAGE_FAILED', `${task.tag} is a stream stage: its function must be an async generator function, it returned ${describeValue(returned)}`);
    }
    it = returned;
    for (;;) {
      while (credit <= 0 && !stopped()) await new Promise<void>((resolve) => (wake = resolve));
      if (stopped()) break;
      const step = await inScope(() => returned.next());
      if (step.done) {
        it = undefined; // finished: nothing to stop
        break;
      }
      if (stopped()) break; // made after the request ended: nobody reads it
      task.partials.postMessage({ kind: 'partial', outputs: outputsOf(step.value, task) } satisfies StreamPartial);
      partials++;
      credit--;
    }
    return { kind: 'streamed', partials };
  } catch (err) {
    // A generator that throws because its request ended (ctx.signal.throwIfAborted()) was stopped, not failed.
    if (stopped()) return { kind: 'streamed', partials };
    return { ...failure(err, task), partials };
  } finally {
    wake = undefined;
    if (requestEnded()) abort.abort();
    // A generator left mid-way (stopped, or a yield that was not a result) is closed: its `finally` runs.
    const left = it;
    await inScope(() => left?.return?.())?.catch(() => undefined);
    await scope?.close();
  }
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { next?: unknown }).next === 'function' && Symbol.asyncIterator in value;
}

/** Normalises what a function returned (or yielded) for one instance into `outputsCount` tensors. */
function outputsOf(value: unknown, task: RunStageTask | StreamStageTask): Tensor[] {
  const list = task.outputsCount === 1 && !Array.isArray(value) ? [value] : value;
  if (!Array.isArray(list) || list.length !== task.outputsCount) {
    throw new ServingError(
      'E_STAGE_FAILED',
      `${task.tag} must ${task.kind === 'stream' ? 'yield' : 'return'} ${task.outputsCount} value${task.outputsCount > 1 ? 's (an array)' : ''}, got ${Array.isArray(value) ? `${value.length} values` : typeof value}`,
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

function failure(err: unknown, task: RunStageTask | StreamStageTask): Extract<InstanceResult, { kind: 'error' }> {
  const e = toServingError(err, 'E_STAGE_FAILED');
  const message = err instanceof ServingError ? e.message : `${task.tag} failed: ${e.message}`;
  return { kind: 'error', error: { code: e.code, message } };
}
