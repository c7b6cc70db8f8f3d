/**
 * The `model.call` channel of one stage task: a MessagePort pair made by the pool per task, the
 * worker's end transferred with the task. The worker sends the calls its stage function makes;
 * the main thread answers each through the model scheduler (so they batch with other traffic).
 *
 * Two correlations of requests and replies, chosen per pool (StageWorkerData.modelCalls):
 * - 'posted' (the default): ModelCallRequest/ModelCallReply with a counter id per channel.
 * - 'comlink': the main thread exposes a ModelCallService and the worker wraps it.
 * perf/stage-model-call.ts measures both from a stage function (one stage thread; 2 shared
 * cores under load, Node 20; ranges over three runs of 9 rounds, 2000 calls each):
 *
 *   main thread answers | in flight | posted: calls/s, p50 | comlink: calls/s, p50
 *   at once (echo)      | 1         | 20-55k, 14-25 µs     | 19-30k, 26-27 µs
 *   at once (echo)      | 16        | 57-83k, 173-183 µs   | 28-37k, 397-452 µs
 *   add model (device)  | 1         | 6-12k,  75-78 µs     | 7-9k,   97-103 µs
 *   add model (device)  | 16        | 17-40k, 356-387 µs   | 16-23k, 564-619 µs
 *
 * comlink adds 10-25 µs to a lone round trip and, at 16 in flight, gets about half the calls/s
 * (per call: a proxy and a FinalizationRegistry entry, a random string id, a wire-value
 * envelope each way).
 * model.call is on the request path, so the hand-written correlation stays; comlink carries
 * the stage workers' control plane instead (stage-worker-links.ts), where it costs nothing
 * that matters.
 */
import { expose, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { type MessagePort, threadId } from 'node:worker_threads';
import { ServingError, toServingError } from '../engine/errors.js';
import type { ModelCallBridge, ModelCallScope } from '../engine/register.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { Tensor } from '../engine/tensor.js';
import type {
  ModelCall,
  ModelCallChannel,
  ModelCallOutcome,
  ModelCallReply,
  ModelCallRequest,
  ModelCallService,
  ModelSequenceControl,
} from './stage-protocol.js';

/**
 * Runs a `model.call` of a stage function (the main thread's side: the model scheduler);
 * `control`, where models keep state, runs `model.endSequence` and the end of an instance's
 * scope (without it both are no-ops: nothing keeps state).
 */
export type ModelCaller = ((call: ModelCall) => Promise<Tensor[][]>) & {
  readonly control?: (control: ModelSequenceControl) => Promise<void>;
};

/** Main thread: answers the calls that arrive on `port` with `callModel` until the port closes. */
export function serveModelCalls(port: MessagePort, channel: ModelCallChannel, callModel: ModelCaller): void {
  const control = (c: ModelSequenceControl): Promise<void> => (callModel.control ? callModel.control(c) : Promise.resolve());
  const failed = (err: unknown): ModelCallOutcome => ({ kind: 'error', error: toServingError(err).toData() });
  if (channel === 'comlink') {
    const service: ModelCallService = {
      call: (call) => callModel(call).then((outputs): ModelCallOutcome => ({ kind: 'outputs', outputs }), failed),
      control: (c) => control(c).then((): ModelCallOutcome => ({ kind: 'done' }), failed),
    };
    expose(service, nodeEndpoint(port));
    return;
  }
  port.on('message', (req: ModelCallRequest) => {
    const answer = (outcome: ModelCallOutcome): void => port.postMessage({ ...outcome, id: req.id } satisfies ModelCallReply);
    if (req.kind === 'model.call') callModel(req).then((outputs) => answer({ kind: 'outputs', outputs }), (err: unknown) => answer(failed(err)));
    else control(req).then(() => answer({ kind: 'done' }), (err: unknown) => answer(failed(err)));
  });
}

/** A task's channel as the worker uses it. */
interface ChannelLink {
  call(call: ModelCall): Promise<Tensor[][]>;
  control(control: ModelSequenceControl): Promise<void>;
}

/** Names this thread's scopes; with the thread id, unique in the process. */
let nextScope = 1;

/**
 * Worker thread: the `model.call` bridge of one task over its channel (set up on the first call;
 * most stage functions never call a model). Without a port the servable declares no models.
 * `onCall` counts the calls (the worker's stats).
 */
export function modelCallsOver(port: MessagePort | undefined, channel: ModelCallChannel, onCall: () => void = () => {}): ModelCallBridge {
  if (!port) {
    const refuse = (): Promise<never> => Promise.reject(new ServingError('E_INTERNAL', 'model.call is not available to this stage'));
    return { call: refuse, endSequence: refuse };
  }
  let link: ChannelLink | undefined;
  const open = (): ChannelLink => (link ??= channel === 'comlink' ? comlinkLink(port) : postedLink(port));
  const call = (modelKey: string, subgraph: number, instances: readonly (readonly Tensor[])[], sequence: SequenceRequest | undefined, scope?: string): Promise<Tensor[][]> => {
    onCall();
    return open().call({ modelKey, subgraph, instances, ...(sequence ? { sequence } : {}), ...(scope ? { scope } : {}) });
  };
  const endSequence = (modelKey: string, sequenceId: string | number): Promise<void> => open().control({ kind: 'model.endSequence', modelKey, sequenceId });
  return {
    call: (modelKey, subgraph, instances, sequence) => call(modelKey, subgraph, instances, sequence),
    endSequence,
    openScope(): ModelCallScope {
      const scope = `${threadId}:${nextScope++}`;
      let started = false;
      let closed = false;
      return {
        call(modelKey, subgraph, instances, sequence) {
          if (sequence?.start) {
            if (closed) return Promise.reject(new ServingError('E_STAGE_FAILED', `Model(${modelKey}).call(): a sequence cannot start after its stage-function instance finished`));
            started = true;
          }
          return call(modelKey, subgraph, instances, sequence, scope);
        },
        endSequence,
        async close() {
          if (closed) return;
          closed = true;
          // Only a scope that started sequences has any to end. A failure here is the main
          // thread's to handle (it ends a task's sequences when the task ends): never the instance's.
          if (started) await open().control({ kind: 'model.closeScope', scope }).catch(() => undefined);
        },
      };
    },
  };
}

function postedLink(port: MessagePort): ChannelLink {
  const waiting = new Map<number, { resolve(v: ModelCallOutcome): void }>();
  let nextId = 1;
  port.on('message', (reply: ModelCallReply) => {
    const w = waiting.get(reply.id);
    if (!w) return;
    waiting.delete(reply.id);
    w.resolve(reply);
  });
  const send = (req: ModelCall & { kind: 'model.call' } | ModelSequenceControl): Promise<ModelCallOutcome> => {
    const id = nextId++;
    return new Promise((resolve) => {
      waiting.set(id, { resolve });
      port.postMessage({ ...req, id } satisfies ModelCallRequest);
    });
  };
  return {
    call: (call) => send({ ...call, kind: 'model.call' }).then(outputsOf),
    control: (c) => send(c).then(doneOf),
  };
}

function comlinkLink(port: MessagePort): ChannelLink {
  const service = wrap<ModelCallService>(nodeEndpoint(port));
  return {
    call: (call) => service.call(call).then(outputsOf),
    control: (c) => service.control(c).then(doneOf),
  };
}

function outputsOf(outcome: ModelCallOutcome): Tensor[][] {
  if (outcome.kind === 'error') throw ServingError.fromData(outcome.error);
  if (outcome.kind !== 'outputs') throw new ServingError('E_INTERNAL', `model.call answered '${outcome.kind}'`);
  return outcome.outputs as Tensor[][];
}

function doneOf(outcome: ModelCallOutcome): void {
  if (outcome.kind === 'error') throw ServingError.fromData(outcome.error);
}
