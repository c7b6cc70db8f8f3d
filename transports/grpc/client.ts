/**
 * The gRPC client (`actorserve/client`), shaped like MindSpore Serving's Python client:
 *
 *   const client = new Client('127.0.0.1:5500', 'add', 'add_common');   // or 'unix:/path'
 *   const [out] = await client.infer([{ x1, x2 }]);                      // out.y is a Tensor
 *
 * `infer` speaks `mindspore.serving.proto.MSService/Predict`, so it also works against
 * MindSpore Serving itself. `stream()` opens our pipelined `actorserve.v1` PredictStream:
 * many requests in flight on one HTTP/2 stream, each with its own promise. `inferStream()`
 * and `generate()` read a streaming method's partial results as they are made (`actorserve.v1`
 * InferStream) as async iterators:
 *
 *   for await (const text of client.generate('tiny_lm', 'Once upon', { max_tokens: 32 })) process.stdout.write(text);
 *
 * Errors are ServingErrors with stable codes: a request that failed as a whole rejects with
 * its error; `infer` rejects with InstanceErrors when only some instances failed, while
 * `inferEach` resolves with each instance's outputs or error. Transport failures (server
 * unreachable, deadline, message too large) map from their gRPC status.
 */
import { type Client as GrpcClient, Metadata, type StatusObject, status as grpcStatus } from '@grpc/grpc-js';
import { InstanceErrors, ServingError, isErrorCode } from '../../engine/errors.js';
import { type Instance, type Tensor, stringTensor, tensor, tensorStrings } from '../../engine/tensor.js';
import { codeOfMsError, decodeTensor, encodeTensor } from './codec.js';
import { PipelinedClientStream } from './client-stream.js';
import {
  ERROR_CODES_TRAILER,
  MODEL_METADATA_PATH,
  PREDICT_PATH,
  PREDICT_STREAM_PATH,
  type WireInstance,
  type WirePredictReply,
  type WireSequence,
  type WireServableSpec,
  type WireStreamReply,
  type WireStreamRequest,
  type WireTensor,
  protos,
} from './proto.js';
import { type InputInstance, toInputTensor } from './values.js';
import { decodeMetadata } from './metadata.js';
import type { SequenceRequest } from '../../engine/sequence.js';
import type { ServableMetadata } from '../../facade/engine.js';
import type { ClientOptions } from './client-options.js';
import { SSLConfig, type SSLConfigFactory } from './client-ssl-config.js';
import { bad, deadlineOf, nonEmpty, openChannel, serviceError } from './channel.js';
import { KServeClient } from './kserve-client.js';
import { type ClientStreamEvent, type InferStreamOptions, type StreamParameters, inferStreamCall, inferStreamRequest, textOf } from './client-infer-stream.js';

export type { InputInstance, InputValue, TensorLike } from './values.js';
export { ServingError, InstanceErrors };
export type { Instance, Tensor };
// Building inputs and reading string outputs without a second import from 'actorserve'.
export { tensor, stringTensor, tensorStrings };

export type { ClientOptions, SSLConfigFactory };
export type { ClientStreamEvent, InferStreamOptions, StreamParameters };
// MindSpore's client `SSLConfig(...)` (`new` optional), for the Client's `sslConfig` option.
export { SSLConfig };
export { KServeClient, KServeStream } from './kserve-client.js';
export type { KServeInferOptions, KServeInferResult, V2ModelMetadata, V2ServerMetadata, V2TensorMetadata, V2Parameters } from './kserve-client.js';

/** Per-instance outcome: the outputs by name, or the error of that instance. */
export type InstanceOutcome = Instance | ServingError;

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

export class Client {
  readonly address: string;
  readonly servableName: string;
  readonly methodName: string;
  readonly versionNumber: number;
  readonly timeoutMs: number | undefined;
  private readonly grpc: GrpcClient;
  private readonly spec: WireServableSpec;
  private kserve: KServeClient | undefined;

  constructor(address: string, servableName: string, methodName: string, options: ClientOptions = {}) {
    this.address = nonEmpty('address', address);
    this.servableName = nonEmpty('servableName', servableName);
    this.methodName = nonEmpty('methodName', methodName);
    const { grpc, settings } = openChannel(address, options);
    this.grpc = grpc;
    this.versionNumber = settings.versionNumber;
    this.timeoutMs = settings.timeoutMs;
    this.spec = { name: servableName, method_name: methodName, version_number: settings.versionNumber };
  }

  /**
   * The Open Inference Protocol (KServe v2, `inference.GRPCInferenceService`) on this client's
   * channel: `client.v2.infer('add', { x1, x2 })`. Models are named `<servable>` (its default
   * method) or `<servable>.<method>`; this client's `timeoutMs` applies. Closed with the client.
   */
  get v2(): KServeClient {
    this.kserve ??= KServeClient.onChannel(this.grpc, { timeoutMs: this.timeoutMs });
    return this.kserve;
  }

  /**
   * Runs the method on one instance or a list of them (`options.sequence`: the sequence of a
   * stateful method, sent as metadata; docs/sequences.md); resolves with one output record per
   * instance, in order. Rejects with the request's ServingError, or with InstanceErrors
   * (`.errors[i]`) when some instances failed.
   */
  async infer(instances: InputInstance | readonly InputInstance[], options: PredictCallOptions = {}): Promise<Instance[]> {
    return throwIfAnyFailed(await this.inferEach(instances, options));
  }

  /** The same as `infer` (MindSpore's client names its non-blocking form `infer_async`). */
  inferAsync(instances: InputInstance | readonly InputInstance[], options: PredictCallOptions = {}): Promise<Instance[]> {
    return this.infer(instances, options);
  }

  /** Like `infer`, but resolves with each instance's outcome (outputs or ServingError). */
  inferEach(instances: InputInstance | readonly InputInstance[], options: PredictCallOptions = {}): Promise<InstanceOutcome[]> {
    let wire: WireInstance[];
    try {
      wire = toInstances(instances);
    } catch (err) {
      return Promise.reject(err);
    }
    const { predict } = protos();
    return new Promise((resolve, reject) => {
      let reply: WirePredictReply | undefined;
      const deadline = deadlineOf(this.timeoutMs);
      const call = this.grpc.makeUnaryRequest(
        PREDICT_PATH,
        predict.requestSerialize,
        predict.responseDeserialize,
        { servable_spec: this.spec, instances: wire },
        sequenceMetadata(options.sequence),
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
      const deadline = deadlineOf(this.timeoutMs);
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

  /**
   * Runs this client's method on instances and yields its events as they come
   * (`actorserve.v1` InferStream): each partial result of a streaming method, one result per
   * instance of any other, `{ index, outputs }`, or `{ index, error }` for an instance that
   * failed after the stream began. A request that fails as a whole throws its ServingError from
   * the iterator. Breaking out of the loop (or aborting `options.signal`) cancels the call and
   * the server stops the generation.
   */
  inferStream(instances: InputInstance | readonly InputInstance[], options: InferStreamOptions = {}): AsyncGenerator<ClientStreamEvent, void, undefined> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let request: ReturnType<typeof inferStreamRequest>;
    try {
      request = inferStreamRequest(this.spec, toInstances(instances), options.parameters, timeoutMs);
    } catch (err) {
      return failing(err);
    }
    return inferStreamCall(this.grpc, request, timeoutMs, options.signal);
  }

  /**
   * Generates text: sends `prompt` as the input `text_input` of `servable`'s method
   * (`options.method`, default 'generate') with generation `parameters` (max_tokens,
   * temperature, top_p, top_k, seed, stop...), and yields each piece of `text_output` as the
   * server makes it. Errors are thrown from the iterator; breaking out cancels the generation.
   */
  generate(servable: string, prompt: string, parameters: StreamParameters = {}, options: GenerateOptions = {}): AsyncGenerator<string, void, undefined> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let request: ReturnType<typeof inferStreamRequest>;
    try {
      const spec: WireServableSpec = { name: nonEmpty('servable', servable), method_name: options.method ?? 'generate', version_number: options.versionNumber ?? 0 };
      request = inferStreamRequest(spec, toInstances({ text_input: prompt }), parameters, timeoutMs);
    } catch (err) {
      return failing(err);
    }
    return textOf(inferStreamCall(this.grpc, request, timeoutMs, options.signal), 'text_output');
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

/**
 * Many requests on one `actorserve.v1.ActorServe/PredictStream`: each `infer`/`inferEach`
 * sends a request with a fresh id and resolves when the reply with that id arrives (replies
 * come in completion order). The server reads a bounded window of requests ahead; beyond it
 * HTTP/2 flow control holds further requests in this process. `end()` half-closes and
 * resolves when every request is answered; a stream that fails rejects every pending request
 * with the stream's error.
 */
export class ClientStream extends PipelinedClientStream<WireStreamRequest, WireStreamReply, number, InstanceOutcome[], number> {
  private nextId = 1;

  constructor(
    grpc: GrpcClient,
    private readonly spec: WireServableSpec,
    timeoutMs: number | undefined,
  ) {
    super(grpc, PREDICT_STREAM_PATH, protos().predictStream, timeoutMs);
  }

  /**
   * One request on the stream; like Client.infer. `options.sequence`: the stateful sequence it
   * is a step of (a stream may carry several sequences; one sequence's requests run in the
   * order they are sent).
   */
  async infer(instances: InputInstance | readonly InputInstance[], options: PredictCallOptions = {}): Promise<Instance[]> {
    return throwIfAnyFailed(await this.inferEach(instances, options));
  }

  /** One request on the stream; like Client.inferEach. */
  inferEach(instances: InputInstance | readonly InputInstance[], options: PredictCallOptions = {}): Promise<InstanceOutcome[]> {
    const refused = this.refusal('ClientStream');
    if (refused) return Promise.reject(refused);
    let wire: WireInstance[];
    try {
      wire = toInstances(instances);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.nextId++;
    const timeout_ms = this.timeoutMs === undefined ? 0 : Math.ceil(this.timeoutMs);
    const sequence = options.sequence ? { sequence: sequenceMessage(options.sequence) } : {};
    return this.send(id, { id, servable_spec: this.spec, instances: wire, timeout_ms, ...sequence }, wire.length);
  }

  protected onReply(reply: WireStreamReply): void {
    const p = this.take(Number(reply.id ?? 0));
    if (!p) return; // answered after its local deadline
    try {
      if (reply.error) {
        p.reject(new ServingError(isErrorCode(reply.error.code) ? reply.error.code : 'E_INTERNAL', reply.error.message || 'Predict failed'));
      } else {
        const results = reply.results ?? [];
        if (results.length !== p.context) {
          throw new ServingError('E_INTERNAL', `the server replied with ${results.length} results to a request of ${p.context} instances`);
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
}

/** Options of `Client.generate`. */
export interface GenerateOptions {
  /** The method (default 'generate'). */
  readonly method?: string;
  /** 0 or absent: the newest loaded version. */
  readonly versionNumber?: number;
  /** Aborting it cancels the generation. */
  readonly signal?: AbortSignal;
  /** Deadline of the whole generation in milliseconds (default: the client's timeoutMs). */
  readonly timeoutMs?: number;
}

/** An iterator that throws `err` on its first pull (argument errors surface where the events are read). */
// eslint-disable-next-line require-yield
async function* failing(err: unknown): AsyncGenerator<never, void, undefined> {
  await Promise.reject(err);
}

/** Per-call options of `Client.infer`. */
export interface PredictCallOptions {
  /** For a method that runs a stateful model: the sequence this call is a step of (each instance one step). */
  readonly sequence?: SequenceRequest;
}

/** A sequence as PredictStreamRequest's `sequence` message. */
function sequenceMessage(s: SequenceRequest): WireSequence {
  return { ...(typeof s.id === 'number' ? { number_id: s.id } : { string_id: s.id }), start: s.start ?? false, end: s.end ?? false };
}

/** A sequence as Predict metadata: sequence-id, sequence-start, sequence-end. */
function sequenceMetadata(sequence: SequenceRequest | undefined): Metadata {
  const m = new Metadata();
  if (!sequence) return m;
  m.set('sequence-id', String(sequence.id));
  if (sequence.start) m.set('sequence-start', 'true');
  if (sequence.end) m.set('sequence-end', 'true');
  return m;
}
