/**
 * The `model.call` channel of one stage task: a MessagePort pair made by the pool per task, the
 * worker's end transferred with the task. The worker sends the calls its stage function makes;
 * the main thread answers each through the model scheduler (so they batch with other traffic).
 *
 * Two correlations of requests and replies, chosen per pool (StageWorkerData.modelCalls):
 * - 'posted' (the default): ModelCallRequest/ModelCallReply with a counter id per channel.
 * - 'comlink': the main thread exposes a ModelCallService and the worker wraps it.
 * perf/stage-model-call.ts measures both from a stage function (2 shared cores, Node 20, one
 * stage thread, model.call answered at once by the main thread):
 *
 *   channel  | in flight | calls/s | p50 µs
 *   posted   | 1         |  ~14.5k |  ~60
 *   comlink  | 1         |  ~10.5k |  ~85
 *   posted   | 16        |  ~40k   | ~390
 *   comlink  | 16        |  ~25k   | ~620
 *
 * comlink costs a third more per round trip (a proxy and a FinalizationRegistry entry per call,
 * a random string id, its wire-value envelope both ways), and model.call is on the request
 * path, so the hand-written correlation stays; comlink carries the control plane instead.
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
