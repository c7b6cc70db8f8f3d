/**
 * `actorserve.v1.ActorServe/PredictStream`: what one request on the stream means (the flow
 * control and lifecycle are stream-session.ts's).
 *
 * Each request carries a client-chosen id, echoed in its reply; an id repeated while the
 * first request with it is in flight ends the whole stream with INVALID_ARGUMENT (and the
 * `actorserve-error-code` trailer). A request that fails gets `PredictStreamReply.error`.
 * A request's `sequence` names the stateful sequence it is a step of: one stream may carry
 * several sequences' steps, pipelined; those of one sequence run in the order they were read.
 */
import { ServingError } from '../../engine/errors.js';
import type { ServingEngine } from '../../facade/engine.js';
import { encodeStreamReply, runPredict } from './predict.js';
import type { WireStreamReply, WireStreamRequest } from './proto.js';
import type { PipelinedRpc } from './stream-session.js';

export function predictStreamRpc(engine: ServingEngine): PipelinedRpc<WireStreamRequest, WireStreamReply> {
  const ids = new Set<number>();
  const idOf = (req: WireStreamRequest): number => req.id ?? 0;
  return {
    name: 'PredictStream',
    admit(req) {
      const id = idOf(req);
      if (ids.has(id)) {
        return new ServingError('E_INVALID_ARGUMENT', `PredictStream: request id ${id} is already in flight on this stream; ids must not repeat until answered`);
      }
      ids.add(id);
      return undefined;
    },
    timeoutMs: (req) => req.timeout_ms ?? 0,
    async run(req, ctx) {
      // admitted before the first await: a sequence's requests keep the order they were read in
      const outcome = await runPredict(engine, req.servable_spec, req.instances, { deadlineMs: ctx.deadlineMs, signal: ctx.signal, log: engine.log, sequence: req.sequence });
      return encodeStreamReply(idOf(req), outcome);
    },
    internalError: (req, error) => encodeStreamReply(idOf(req), { ok: false, error }),
    settled: (req) => ids.delete(idOf(req)),
  };
}
