/**
 * The gRPC client (`actorserve/client`), shaped like MindSpore Serving's Python client:
 *
 *   const client = new Client('127.0.0.1:5500', 'add', 'add_common');   // or 'unix:/path'
 *   const [out] = await client.infer([{ x1, x2 }]);                      // out.y is a Tensor
 *
 * `infer` speaks `mindspore.serving.proto.MSService/Predict`, so it also works against
 * MindSpore Serving itself. `stream()` opens our pipelined `actorserve.v1` PredictStream:
 * many requests in flight on one HTTP/2 stream, each with its own promise.
 *
 * Errors are ServingErrors with stable codes: a request that failed as a whole rejects with
 * its error; `infer` rejects with InstanceErrors when only some instances failed, while
 * `inferEach` resolves with each instance's outputs or error. Transport failures (server
 * unreachable, deadline, message too large) map from their gRPC status.
 */
import {
  type ChannelCredentials,
  Client as GrpcClient,
  type ClientDuplexStream,
  Metadata,
  type ServiceError,
  type StatusObject,
  credentials,
  status as grpcStatus,
} from '@grpc/grpc-js';
import { InstanceErrors, ServingError, isErrorCode } from '../../engine/errors.js';
import { type Instance, type Tensor, stringTensor, tensor, tensorStrings } from '../../engine/tensor.js';
import { codeOfMsError, decodeTensor, encodeTensor, errorOfStatus } from './codec.js';
import {
  ERROR_CODE_TRAILER,
  ERROR_CODES_TRAILER,
  MODEL_METADATA_PATH,
  PREDICT_PATH,
  PREDICT_STREAM_PATH,
  type WireInstance,
  type WirePredictReply,
  type WireServableSpec,
  type WireStreamReply,
  type WireStreamRequest,
  type WireTensor,
  protos,
} from './proto.js';
import { type InputInstance, toInputTensor } from './values.js';
import { decodeMetadata } from './metadata.js';
import type { ServableMetadata } from '../../facade/engine.js';
import { type ClientOptions, clientSettings } from './client-options.js';
import { SSLConfig, type SSLConfigFactory, clientTlsFiles } from './client-ssl-config.js';

export type { InputInstance, InputValue, TensorLike } from './values.js';
export { ServingError, InstanceErrors };
export type { Instance, Tensor };
// Building inputs and reading string outputs without a second import from 'actorserve'.
export { tensor, stringTensor, tensorStrings };

export type { ClientOptions, SSLConfigFactory };
// MindSpore's client `SSLConfig(...)` (`new` optional), for the Client's `sslConfig` option.
export { SSLConfig };

/** Per-instance outcome: the outputs by name, or the error of that instance. */
export type InstanceOutcome = Instance | ServingError;

const MIB = 1024 * 1024;

function bad(message: string): ServingError {
  return new ServingError('E_INVALID_ARGUMENT', `Client: ${message}`);
}

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string') throw bad(`${name} must be a string, got ${typeof value}`);
  if (value.length === 0) throw bad(`${name} must not be empty`);
  return value;
}

function channelCredentials(ssl: SSLConfig | undefined): ChannelCredentials {
  if (ssl === undefined) return credentials.createInsecure();
  const pem = clientTlsFiles(ssl, 'Client: sslConfig');
  return credentials.createSsl(pem.customCa, pem.privateKey, pem.certificate);
}

function toInstances(instances: InputInstance | readonly InputInstance[]): WireInstance[] {
  const list = Array.isArray(instances) ? (instances as readonly InputInstance[]) : [instances as InputInstance];
  return list.map((inst, i) => {
    if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) {
      throw bad(`instance ${i} must be an object of named inputs`);
    }
    const items: Record<string, WireTensor> = {};
    for (const [name, value] of Object.entries(inst)) {
      items[name] = encodeTensor(toInputTensor(value, `instance ${i}, input '${name}'`));
    }
    return { items };
  });
}

function decodeOutputs(items: Record<string, WireTensor> | undefined, i: number): Instance {
  const out: Instance = {};
  try {
    for (const [name, t] of Object.entries(items ?? {})) out[name] = decodeTensor(t, `reply instance ${i}, output '${name}'`);
  } catch (err) {
    throw new ServingError('E_INTERNAL', `the server sent a malformed tensor: ${(err as Error).message}`);
  }
  return out;
}

function text(bytes: Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8') : '';
}

/** MindSpore's reply rules (§1.6) read back: one error = the whole request; else per instance. */
function decodeMsReply(reply: WirePredictReply, trailers: Metadata | undefined, sent: number): InstanceOutcome[] {
  const errors = reply.error_msg ?? [];
  const instances = reply.instances ?? [];
  const codes = String(trailers?.get(ERROR_CODES_TRAILER)[0] ?? '').split(',');
  const errorAt = (k: number): ServingError => {
    const e = errors[k]!;
    const code = codes[k];
    return new ServingError(isErrorCode(code) ? code : codeOfMsError(Number(e.error_code ?? 1)), text(e.error_msg) || 'Predict failed');
  };
  if (errors.length === 1 && Number(errors[0]!.error_code ?? 0) !== 0) throw errorAt(0);
  if (instances.length !== sent || (errors.length !== 0 && errors.length !== sent)) {
    throw new ServingError(
      'E_INTERNAL',
      `the server replied with ${instances.length} instances and ${errors.length} errors to a request of ${sent} instances`,
    );
  }
  return instances.map((inst, k) => (errors.length > 0 && Number(errors[k]!.error_code ?? 0) !== 0 ? errorAt(k) : decodeOutputs(inst.items, k)));
}

function throwIfAnyFailed(outcomes: InstanceOutcome[]): Instance[] {
  if (outcomes.some((o) => o instanceof ServingError)) {
    throw new InstanceErrors(outcomes.map((o) => (o instanceof ServingError ? o : undefined)));
  }
  return outcomes as Instance[];
}

function serviceError(err: ServiceError): ServingError {
  return errorOfStatus(err.code, err.details, String(err.metadata?.get(ERROR_CODE_TRAILER)[0] ?? ''));
}

export class Client {
  readonly address: string;
  readonly servableName: string;
  readonly methodName: string;
  readonly versionNumber: number;
  readonly timeoutMs: number | undefined;
  private readonly grpc: GrpcClient;
  private readonly spec: WireServableSpec;

  constructor(address: string, servableName: string, methodName: string, options: ClientOptions = {}) {
    this.address = nonEmpty('address', address);
    this.servableName = nonEmpty('servableName', servableName);
    this.methodName = nonEmpty('methodName', methodName);
    const o = clientSettings(options);
    this.versionNumber = o.versionNumber;
    this.timeoutMs = o.timeoutMs;
    const maxBytes = Math.floor(o.maxMsgMbSize * MIB);
    this.grpc = new GrpcClient(address, channelCredentials(o.sslConfig), {
      'grpc.max_send_message_length': maxBytes,
      'grpc.max_receive_message_length': maxBytes,
      ...o.channelOptions,
    });
    this.spec = { name: servableName, method_name: methodName, version_number: o.versionNumber };
    protos(); // fail here, not on the first call, if the protos cannot be loaded
  }

  /**
   * Runs the method on one instance or a list of them; resolves with one output record per
   * instance, in order. Rejects with the request's ServingError, or with InstanceErrors
   * (`.errors[i]`) when some instances failed.
   */
  async infer(instances: InputInstance | readonly InputInstance[]): Promise<Instance[]> {
    return throwIfAnyFailed(await this.inferEach(instances));
  }

  /** The same as `infer` (MindSpore's client names its non-blocking form `infer_async`). */
  inferAsync(instances: InputInstance | readonly InputInstance[]): Promise<Instance[]> {
    return this.infer(instances);
  }

  /** Like `infer`, but resolves with each instance's outcome (outputs or ServingError). */
  inferEach(instances: InputInstance | readonly InputInstance[]): Promise<InstanceOutcome[]> {
    let wire: WireInstance[];
    try {
      wire = toInstances(instances);
    } catch (err) {
      return Promise.reject(err);
    }
    const { predict } = protos();
    return new Promise((resolve, reject) => {
      let reply: WirePredictReply | undefined;
      const deadline = this.timeoutMs !== undefined ? Date.now() + this.timeoutMs : Infinity;
      const call = this.grpc.makeUnaryRequest(
        PREDICT_PATH,
        predict.requestSerialize,
        predict.responseDeserialize,
        { servable_spec: this.spec, instances: wire },
        new Metadata(),
        { deadline },
        (err, value) => {
          if (err) reject(serviceError(err));
          else reply = value;
        },
      );
      call.on('status', (s: StatusObject) => {
        if (s.code !== grpcStatus.OK || reply === undefined) return; // the callback rejected
        try {
          resolve(decodeMsReply(reply, s.metadata, wire.length));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /**
   * The metadata of this client's servable at its version (`actorserve.v1` GetModelMetadata):
   * every loaded version and, per method, its inputs (dtype and dims where an input feeds a
   * model) and outputs. Rejects with E_UNKNOWN_SERVABLE or E_UNKNOWN_VERSION.
   */
  metadata(): Promise<ServableMetadata> {
    const { modelMetadata } = protos();
    return new Promise((resolve, reject) => {
      const deadline = this.timeoutMs !== undefined ? Date.now() + this.timeoutMs : Infinity;
      this.grpc.makeUnaryRequest(
        MODEL_METADATA_PATH,
        modelMetadata.requestSerialize,
        modelMetadata.responseDeserialize,
        { name: this.servableName, version_number: this.versionNumber },
        new Metadata(),
        { deadline },
        (err, value) => (err ? reject(serviceError(err)) : resolve(decodeMetadata(value!))),
      );
    });
  }

  /** Opens a pipelined stream to this servable method (see ClientStream). */
  stream(options: { timeoutMs?: number } = {}): ClientStream {
    return new ClientStream(this.grpc, this.spec, options.timeoutMs ?? this.timeoutMs);
  }

  /** Closes the channel: calls not yet started fail with E_UNAVAILABLE; calls already sent complete. */
  close(): void {
    this.grpc.close();
  }
}

interface Pending {
  readonly resolve: (outcomes: InstanceOutcome[]) => void;
  readonly reject: (err: ServingError) => void;
  readonly count: number;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * Many requests on one `actorserve.v1.ActorServe/PredictStream`: each `infer`/`inferEach`
 * sends a request with a fresh id and resolves when the reply with that id arrives (replies
 * come in completion order). The server reads a bounded window of requests ahead; beyond it
 * HTTP/2 flow control holds further requests in this process. `end()` half-closes and
 * resolves when every request is answered; a stream that fails rejects every pending request
 * with the stream's error.
 */
export class ClientStream {
  private readonly call: ClientDuplexStream<WireStreamRequest, WireStreamReply>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedWith: ServingError | undefined;
  private ending = false;
  private readonly done: Promise<void>;
  private settle!: (err?: ServingError) => void;

  constructor(
    grpc: GrpcClient,
    private readonly spec: WireServableSpec,
    private readonly timeoutMs: number | undefined,
  ) {
    const { predictStream } = protos();
    this.call = grpc.makeBidiStreamRequest(PREDICT_STREAM_PATH, predictStream.requestSerialize, predictStream.responseDeserialize, new Metadata(), {});
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    this.done.catch(() => undefined);
    this.call.on('data', (reply: WireStreamReply) => this.onReply(reply));
    this.call.on('error', () => undefined); // the same status arrives on 'status'
    this.call.on('status', (s: StatusObject) => this.onStatus(s));
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** One request on the stream; like Client.infer. */
  async infer(instances: InputInstance | readonly InputInstance[]): Promise<Instance[]> {
    return throwIfAnyFailed(await this.inferEach(instances));
  }

  /** One request on the stream; like Client.inferEach. */
  inferEach(instances: InputInstance | readonly InputInstance[]): Promise<InstanceOutcome[]> {
    if (this.ending) return Promise.reject(new ServingError('E_INVALID_ARGUMENT', 'ClientStream: the stream was ended; open a new one'));
    if (this.closedWith) return Promise.reject(this.closedWith);
    let wire: WireInstance[];
    try {
      wire = toInstances(instances);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.nextId++;
    return new Promise<InstanceOutcome[]>((resolve, reject) => {
      const timer =
        this.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              if (this.pending.delete(id)) {
                reject(new ServingError('E_DEADLINE_EXCEEDED', `the request did not complete within its deadline of ${this.timeoutMs} ms`));
              }
            }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, count: wire.length, timer });
      this.call.write({ id, servable_spec: this.spec, instances: wire, timeout_ms: this.timeoutMs === undefined ? 0 : Math.ceil(this.timeoutMs) });
    });
  }

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

  private onReply(reply: WireStreamReply): void {
    const id = Number(reply.id ?? 0);
    const p = this.pending.get(id);
    if (!p) return; // answered after its local deadline
    this.pending.delete(id);
    clearTimeout(p.timer);
    try {
      if (reply.error) {
        p.reject(new ServingError(isErrorCode(reply.error.code) ? reply.error.code : 'E_INTERNAL', reply.error.message || 'Predict failed'));
      } else {
        const results = reply.results ?? [];
        if (results.length !== p.count) {
          throw new ServingError('E_INTERNAL', `the server replied with ${results.length} results to a request of ${p.count} instances`);
        }
        p.resolve(
          results.map((r, k) =>
            r.error ? new ServingError(isErrorCode(r.error.code) ? r.error.code : 'E_INTERNAL', r.error.message || 'Predict failed') : decodeOutputs(r.outputs, k),
          ),
        );
      }
    } catch (err) {
      p.reject(err as ServingError);
    }
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
