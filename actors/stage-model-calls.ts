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
import type { MessagePort } from 'node:worker_threads';
import { ServingError, toServingError } from '../engine/errors.js';
import type { ModelCallBridge } from '../engine/register.js';
import type { Tensor } from '../engine/tensor.js';
import type {
  ModelCall,
  ModelCallChannel,
  ModelCallOutcome,
  ModelCallReply,
  ModelCallRequest,
  ModelCallService,
} from './stage-protocol.js';

/** Runs a `model.call` of a stage function (the main thread's side: the model scheduler). */
export type ModelCaller = (call: ModelCall) => Promise<Tensor[][]>;

/** Main thread: answers the calls that arrive on `port` with `callModel` until the port closes. */
export function serveModelCalls(port: MessagePort, channel: ModelCallChannel, callModel: ModelCaller): void {
  if (channel === 'comlink') {
    const service: ModelCallService = {
      call: (modelKey, subgraph, instances) =>
        callModel({ modelKey, subgraph, instances }).then(
          (outputs): ModelCallOutcome => ({ kind: 'outputs', outputs }),
          (err: unknown): ModelCallOutcome => ({ kind: 'error', error: toServingError(err).toData() }),
        ),
    };
    expose(service, nodeEndpoint(port));
    return;
  }
  port.on('message', (req: ModelCallRequest) => {
    callModel(req).then(
      (outputs) => port.postMessage({ kind: 'outputs', id: req.id, outputs } satisfies ModelCallReply),
      (err: unknown) => port.postMessage({ kind: 'error', id: req.id, error: toServingError(err).toData() } satisfies ModelCallReply),
    );
  });
}

/**
 * Worker thread: the `model.call` bridge of one task over its channel (set up on the first call;
 * most stage functions never call a model). Without a port the servable declares no models.
 */
export function modelCallsOver(port: MessagePort | undefined, channel: ModelCallChannel): ModelCallBridge {
  if (!port) return () => Promise.reject(new ServingError('E_INTERNAL', 'model.call is not available to this stage'));
  let bridge: ModelCallBridge | undefined;
  return (modelKey, subgraph, instances) => {
    bridge ??= channel === 'comlink' ? comlinkBridge(port) : postedBridge(port);
    return bridge(modelKey, subgraph, instances);
  };
}

function postedBridge(port: MessagePort): ModelCallBridge {
  const waiting = new Map<number, { resolve(v: Tensor[][]): void; reject(e: ServingError): void }>();
  let nextId = 1;
  port.on('message', (reply: ModelCallReply) => {
    const w = waiting.get(reply.id);
    if (!w) return;
    waiting.delete(reply.id);
    if (reply.kind === 'error') w.reject(ServingError.fromData(reply.error));
    else w.resolve(reply.outputs as Tensor[][]);
  });
  return (modelKey, subgraph, instances) => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      port.postMessage({ kind: 'model.call', id, modelKey, subgraph, instances } satisfies ModelCallRequest);
    });
  };
}

function comlinkBridge(port: MessagePort): ModelCallBridge {
  const service = wrap<ModelCallService>(nodeEndpoint(port));
  return async (modelKey, subgraph, instances) => {
    const outcome = await service.call(modelKey, subgraph, instances);
    if (outcome.kind === 'error') throw ServingError.fromData(outcome.error);
    return outcome.outputs as Tensor[][];
  };
}
