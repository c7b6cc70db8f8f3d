/**
 * The server side of `actorserve.v1.ActorServe/PredictStream`: one session per stream.
 *
 * Requests are dispatched to the engine as they are read; each reply is written as soon as
 * its request completes, tagged with the request's id. Flow control: at most `window`
 * requests of a stream are in the engine at once, and none are read while the reply side is
 * backed up (a write returned false and 'drain' has not come). When either holds, the
 * session pauses the call's readable side; grpc-js then stops asking HTTP/2 for messages,
 * the stream's flow-control window fills, and the client's writes wait. Server memory per
 * stream is bounded by window + the readable buffer (16 messages) + the HTTP/2 window.
 *
 * Whole-stream errors (a repeated id in flight) end the call with a real gRPC status and the
 * `actorserve-error-code` trailer; per-request errors travel in PredictStreamReply.error.
 */
import { Metadata, type ServerDuplexStream, status as grpcStatus } from '@grpc/grpc-js';
import { Cancellation } from '../../engine/cancellation.js';
import { ServingError } from '../../engine/errors.js';
import type { ServingEngine } from '../../facade/engine.js';
import { encodeStreamReply, runPredict } from './predict.js';
import { ERROR_CODE_TRAILER, type WireStreamReply, type WireStreamRequest } from './proto.js';

export interface StreamStats {
  streamRequests: number;
  /** Largest number of one stream's requests in the engine at once, over all streams. */
  peakStreamInflight: number;
}

export class PredictStreamSession {
  private readonly inflight = new Map<number, Cancellation>();
  private readPaused = false;
  private awaitingDrain = false;
  private halfClosed = false;
  private draining = false;
  private ended = false;

  constructor(
    private readonly call: ServerDuplexStream<WireStreamRequest, WireStreamReply>,
    private readonly engine: ServingEngine,
    private readonly window: number,
    private readonly stats: StreamStats,
    private readonly onEnd: (session: PredictStreamSession) => void,
  ) {}

  start(): void {
    const call = this.call;
    call.on('data', (req: WireStreamRequest) => this.onRequest(req));
    call.on('end', () => {
      this.halfClosed = true;
      this.maybeFinish();
    });
    call.on('cancelled', () => this.abort());
    call.on('close', () => this.abort());
  }

  /** Server shutdown: read no more, answer what is in flight, then end with UNAVAILABLE. */
  drain(): void {
    this.draining = true;
    this.updateFlow();
    this.maybeFinish();
  }

  private onRequest(req: WireStreamRequest): void {
    if (this.ended) return;
    const id = req.id ?? 0;
    if (this.inflight.has(id)) {
      this.fail(new ServingError('E_INVALID_ARGUMENT', `PredictStream: request id ${id} is already in flight on this stream; ids must not repeat until answered`));
      return;
    }
    const cancellation = new Cancellation();
    this.inflight.set(id, cancellation);
    this.stats.streamRequests++;
    if (this.inflight.size > this.stats.peakStreamInflight) this.stats.peakStreamInflight = this.inflight.size;
    this.updateFlow();
    runPredict(this.engine, req.servable_spec, req.instances, {
      deadlineMs: this.deadlineMs(req.timeout_ms ?? 0),
      signal: cancellation,
      log: this.engine.log,
    }).then((outcome) => {
      let message: WireStreamReply;
      try {
        message = encodeStreamReply(id, outcome);
      } catch (err) {
        this.engine.log(`gRPC PredictStream: cannot encode the reply: ${(err as Error)?.stack ?? String(err)}`);
        const error = new ServingError('E_INTERNAL', `the reply could not be encoded: ${(err as Error)?.message ?? String(err)}`);
        message = encodeStreamReply(id, { ok: false, error });
      }
      this.reply(id, message);
    }).catch((err: unknown) => this.engine.log(`gRPC PredictStream: replying to request ${id} failed: ${(err as Error)?.stack ?? String(err)}`));
  }

  /** The request's time budget: its own timeout_ms, capped by the stream's deadline. */
  private deadlineMs(timeoutMs: number): number | undefined {
    const d = this.call.getDeadline();
    const streamLeft = d instanceof Date ? d.getTime() - Date.now() : Number.isFinite(d) ? d - Date.now() : undefined;
    const own = timeoutMs > 0 ? timeoutMs : undefined;
    if (own === undefined) return streamLeft;
    return streamLeft === undefined ? own : Math.min(own, streamLeft);
  }

  private reply(id: number, message: WireStreamReply): void {
    if (this.ended || !this.inflight.delete(id)) return;
    if (!this.call.write(message) && !this.awaitingDrain) {
      this.awaitingDrain = true;
      this.call.once('drain', () => {
        this.awaitingDrain = false;
        this.updateFlow();
      });
    }
    this.updateFlow();
    this.maybeFinish();
  }

  private updateFlow(): void {
    if (this.ended) return;
    const hold = this.draining || this.awaitingDrain || this.inflight.size >= this.window;
    if (hold && !this.readPaused) {
      this.readPaused = true;
      this.call.pause();
    } else if (!hold && this.readPaused) {
      this.readPaused = false;
      this.call.resume();
    }
  }

  private maybeFinish(): void {
    if (this.ended || this.inflight.size > 0) return;
    if (this.halfClosed) {
      this.ended = true;
      this.call.end();
      this.onEnd(this);
    } else if (this.draining) {
      this.fail(new ServingError('E_STOPPED', 'the gRPC server is shutting down; requests not answered on this stream were not run'));
    }
  }

  /** Ends the whole stream with the error's gRPC status; requests in flight are dropped. */
  private fail(error: ServingError): void {
    if (this.ended) return;
    this.ended = true;
    for (const c of this.inflight.values()) c.cancel();
    this.inflight.clear();
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_TRAILER, error.code);
    // grpc-js ends a server stream with the status of an emitted error
    this.call.emit('error', { code: error.grpcStatus ?? grpcStatus.INTERNAL, details: error.message, metadata });
    this.onEnd(this);
  }

  /** The client went away: drop the work of every request in flight. */
  private abort(): void {
    if (this.ended && this.inflight.size === 0) return;
    this.ended = true;
    for (const c of this.inflight.values()) c.cancel();
    this.inflight.clear();
    this.onEnd(this);
  }
}
