/**
 * The client side of a pipelined bidirectional stream (`actorserve.v1` PredictStream and the
 * Open Inference Protocol's ModelStreamInfer): requests keyed by id, each with its promise and
 * local deadline; replies matched by id in whatever order they come. What a reply means is the
 * subclass's `onReply`.
 *
 * The server reads a bounded window of requests ahead; beyond it HTTP/2 flow control holds
 * further requests in this process. `end()` half-closes and resolves when every request is
 * answered; a stream that fails rejects every pending request with the stream's error;
 * `cancel()` rejects them with E_STOPPED and the server drops their work.
 */
import { Client as GrpcClient, type ClientDuplexStream, type MethodDefinition, Metadata, type StatusObject, status as grpcStatus } from '@grpc/grpc-js';
import { ServingError } from '../../engine/errors.js';
import { errorOfStatus } from './codec.js';
import { ERROR_CODE_TRAILER } from './proto.js';

/** A request waiting for its reply; `context` is what the subclass needs to read the reply. */
export interface PendingRequest<Result, Context> {
  readonly resolve: (result: Result) => void;
  readonly reject: (err: ServingError) => void;
  readonly context: Context;
  readonly timer: NodeJS.Timeout | undefined;
}

export abstract class PipelinedClientStream<Req, Reply, Key, Result, Context> {
  protected readonly call: ClientDuplexStream<Req, Reply>;
  private readonly pending = new Map<Key, PendingRequest<Result, Context>>();
  private closedWith: ServingError | undefined;
  private ending = false;
  private readonly done: Promise<void>;
  private settle!: (err?: ServingError) => void;

  constructor(
    grpc: GrpcClient,
    path: string,
    method: MethodDefinition<Req, Reply>,
    protected readonly timeoutMs: number | undefined,
  ) {
    this.call = grpc.makeBidiStreamRequest(path, method.requestSerialize, method.responseDeserialize, new Metadata(), {});
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    this.done.catch(() => undefined);
    this.call.on('data', (reply: Reply) => this.onReply(reply));
    this.call.on('error', () => undefined); // the same status arrives on 'status'
    this.call.on('status', (s: StatusObject) => this.onStatus(s));
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Why no request can be sent now (the stream was ended or failed), or undefined. */
  protected refusal(who: string): ServingError | undefined {
    if (this.ending) return new ServingError('E_INVALID_ARGUMENT', `${who}: the stream was ended; open a new one`);
    return this.closedWith;
  }

  protected isPending(key: Key): boolean {
    return this.pending.has(key);
  }

  /** Writes `request` and resolves with the reply the subclass settles under `key`. */
  protected send(key: Key, request: Req, context: Context): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const timer =
        this.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              if (this.pending.delete(key)) {
                reject(new ServingError('E_DEADLINE_EXCEEDED', `the request did not complete within its deadline of ${this.timeoutMs} ms`));
              }
            }, this.timeoutMs);
      this.pending.set(key, { resolve, reject, context, timer });
      this.call.write(request);
    });
  }

  /** The pending request under `key`, no longer pending (undefined when answered after its local deadline). */
  protected take(key: Key): PendingRequest<Result, Context> | undefined {
    const p = this.pending.get(key);
    if (!p) return undefined;
    this.pending.delete(key);
    clearTimeout(p.timer);
    return p;
  }

  protected abstract onReply(reply: Reply): void;

  /** Half-closes the stream: resolves when the server has answered everything and ended it. */
  end(): Promise<void> {
    if (!this.ending && !this.closedWith) {
      this.ending = true;
      this.call.end();
    }
    return this.done;
  }

  /** Cancels the stream: pending requests reject with E_STOPPED and the server drops their work. */
  cancel(): void {
    this.failAll(new ServingError('E_STOPPED', 'the stream was cancelled'));
    this.call.cancel();
  }

  private onStatus(s: StatusObject): void {
    if (s.code === grpcStatus.OK) {
      this.failAll(new ServingError('E_UNAVAILABLE', 'the stream ended before this request was answered'));
      this.settle();
      return;
    }
    const err = errorOfStatus(s.code, s.details, String(s.metadata?.get(ERROR_CODE_TRAILER)[0] ?? ''));
    this.failAll(err);
    this.settle(err);
  }

  private failAll(err: ServingError): void {
    this.closedWith ??= err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
