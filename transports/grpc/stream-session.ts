/**
 * The server side of one pipelined bidirectional stream (`actorserve.v1` PredictStream and the
 * Open Inference Protocol's ModelStreamInfer): the flow control and lifecycle both share; what
 * a request means is the `PipelinedRpc` handed in.
 *
 * Requests are dispatched as they are read; each reply is written as soon as its request
 * completes (completion order). Flow control: at most `window` requests of a stream are in
 * the engine at once, and none are read while the reply side is backed up (a write returned
 * false and 'drain' has not come). When either holds, the session pauses the call's readable
 * side; grpc-js then stops asking HTTP/2 for messages, the stream's flow-control window fills,
 * and the client's writes wait. Server memory per stream is bounded by window + the readable
 * buffer (16 messages) + the HTTP/2 window.
 *
 * A request the rpc refuses as a whole-stream error (`admit`) ends the call with a real gRPC
 * status and the `actorserve-error-code` trailer. The client cancelling (or going away) drops
 * the work of every request in flight. `drain()` (server shutdown) reads no more, answers
 * what is in flight, then ends the call with UNAVAILABLE.
 */
import { Metadata, type ServerDuplexStream, status as grpcStatus } from '@grpc/grpc-js';
import { Cancellation } from '../../engine/cancellation.js';
import { ServingError } from '../../engine/errors.js';
import { ERROR_CODE_TRAILER } from './proto.js';
import { MalformedMessage } from './malformed.js';

export interface StreamStats {
  streamRequests: number;
  /** Largest number of one stream's requests in the engine at once, over all streams. */
  peakStreamInflight: number;
}

export interface StreamRequestContext {
  /** Aborted when the client cancels the stream; the engine then drops the request's work. */
  readonly signal: Cancellation;
  /** The request's time budget: its own timeout, capped by the stream's deadline. */
  readonly deadlineMs: number | undefined;
}

/** What one request on a pipelined stream means. */
export interface PipelinedRpc<Req, Reply> {
  /** The rpc's name, for log lines. */
  readonly name: string;
  /** A whole-stream error for a request that cannot be taken (the stream ends with it), or undefined. */
  admit?(req: Req): ServingError | undefined;
  /** The request's own timeout in milliseconds (undefined or 0: none). */
  timeoutMs?(req: Req): number | undefined;
  /** Runs the request; resolves with its reply (request errors are replies too). */
  run(req: Req, ctx: StreamRequestContext): Promise<Reply>;
  /** The reply when `run` threw (a bug, not bad input). */
  internalError(req: Req, error: ServingError): Reply;
  /** The request is no longer in flight (answered or dropped). */
  settled?(req: Req): void;
}

/** A pipelined stream session, as the server tracks it (for drain and counters). */
export interface StreamSession {
  start(): void;
  drain(): void;
}

export class PipelinedStreamSession<Req, Reply> implements StreamSession {
  private readonly inflight = new Map<number, { readonly req: Req; readonly cancellation: Cancellation }>();
  private nextSeq = 0;
  private readPaused = false;
  private awaitingDrain = false;
  private halfClosed = false;
  private draining = false;
  private ended = false;

  constructor(
    private readonly call: ServerDuplexStream<Req, Reply>,
    private readonly rpc: PipelinedRpc<Req, Reply>,
    private readonly window: number,
    private readonly stats: StreamStats,
    private readonly log: (line: string) => void,
    private readonly onEnd: (session: StreamSession) => void,
  ) {}

  start(): void {
    const call = this.call;
    call.on('data', (req: Req) => this.onRequest(req));
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

  private onRequest(req: Req): void {
    if (this.ended) return;
    const message: unknown = req;
    const refusal = message instanceof MalformedMessage ? message.error() : this.rpc.admit?.(req);
    if (refusal) {
      this.fail(refusal);
      return;
    }
    const seq = this.nextSeq++;
    const cancellation = new Cancellation();
    this.inflight.set(seq, { req, cancellation });
    this.stats.streamRequests++;
    if (this.inflight.size > this.stats.peakStreamInflight) this.stats.peakStreamInflight = this.inflight.size;
    this.updateFlow();
    const rpc = this.rpc;
    rpc
      .run(req, { signal: cancellation, deadlineMs: this.deadlineMs(rpc.timeoutMs?.(req) ?? 0) })
      .catch((err: unknown) => {
        this.log(`gRPC ${rpc.name}: cannot answer a request: ${(err as Error)?.stack ?? String(err)}`);
        return rpc.internalError(req, new ServingError('E_INTERNAL', `the reply could not be made: ${(err as Error)?.message ?? String(err)}`));
      })
      .then((reply) => this.reply(seq, reply))
      .catch((err: unknown) => this.log(`gRPC ${rpc.name}: replying failed: ${(err as Error)?.stack ?? String(err)}`));
  }

  /** The request's time budget: its own timeout, capped by the stream's deadline. */
  private deadlineMs(timeoutMs: number): number | undefined {
    const d = this.call.getDeadline();
    const streamLeft = d instanceof Date ? d.getTime() - Date.now() : Number.isFinite(d) ? d - Date.now() : undefined;
    const own = timeoutMs > 0 ? timeoutMs : undefined;
    if (own === undefined) return streamLeft;
    return streamLeft === undefined ? own : Math.min(own, streamLeft);
  }

  private reply(seq: number, message: Reply): void {
    const entry = this.inflight.get(seq);
    if (this.ended || !entry) return;
    this.inflight.delete(seq);
    this.rpc.settled?.(entry.req);
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

  /** Drops the work of every request in flight. */
  private dropInflight(): void {
    for (const { req, cancellation } of this.inflight.values()) {
      cancellation.cancel();
      this.rpc.settled?.(req);
    }
    this.inflight.clear();
  }

  /** Ends the whole stream with the error's gRPC status; requests in flight are dropped. */
  private fail(error: ServingError): void {
    if (this.ended) return;
    this.ended = true;
    this.dropInflight();
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
    this.dropInflight();
    this.onEnd(this);
  }
}
