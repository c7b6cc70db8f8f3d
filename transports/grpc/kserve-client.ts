/**
 * The Open Inference Protocol's gRPC client (`inference.GRPCInferenceService`, KServe v2),
 * exported by `actorserve/client` as `KServeClient` and reachable from a `Client` as
 * `client.v2` (same channel). It speaks to actorserve and to any v2 server (Triton, KServe,
 * MLServer):
 *
 *   const v2 = new KServeClient('127.0.0.1:5500');
 *   const r = await v2.infer('add', { x1: tensor('float32', [2, 2], a), x2 });   // r.outputs.y
 *   const s = v2.stream();                                                        // pipelined
 *   await Promise.all(batches.map((b) => s.infer('add', b)));
 *   await s.end();
 *
 * Inputs are what `Client.infer` takes (tensors, typed arrays, numbers, strings, ...), named;
 * a v2 tensor carries the batch dimension itself. They travel in `raw_input_contents` by
 * default (`contents: 'typed'` uses the typed fields; FP16 has none). Outputs are engine
 * tensors by name (BYTES as `bytes` tensors: `tensorStrings` reads them). Errors are
 * ServingErrors: a failed call maps from its gRPC status (the `actorserve-error-code`
 * trailer gives actorserve's exact code); a failed stream request rejects with its
 * `error_message`.
 */
import { Client as GrpcClient, Metadata } from '@grpc/grpc-js';
import { ServingError, isErrorCode } from '../../engine/errors.js';
import type { Instance } from '../../engine/tensor.js';
import { toV2Datatype } from '../kserve/datatypes.js';
import type { V2Parameters } from '../kserve/infer.js';
import type { V2ModelMetadata, V2ServerMetadata, V2TensorMetadata } from '../kserve/models.js';
import { tensorToRaw } from '../kserve/raw.js';
import { bad, deadlineOf, nonEmpty, openChannel, serviceError } from './channel.js';
import type { ClientOptions } from './client-options.js';
import { PipelinedClientStream } from './client-stream.js';
import { STREAM_ERROR_CODE_PARAMETER, decodeParameters, decodeV2Tensors, encodeParameters, typedContents } from './kserve-codec.js';
import {
  KSERVE_PATH,
  type KServeMessages,
  type KServeRpc,
  type WireInferTensor,
  type WireModelInferRequest,
  type WireModelInferResponse,
  type WireModelStreamInferResponse,
  type WireV2TensorMetadata,
  protos,
} from './proto.js';
import { type InputInstance, toInputTensor } from './values.js';

export type { V2ModelMetadata, V2ServerMetadata, V2TensorMetadata, V2Parameters };

const WHO = 'KServeClient';

export interface KServeInferOptions {
  /** The model version (a decimal string or number); absent: the newest loaded. */
  readonly version?: string | number;
  /** The request id, echoed in the result (on a stream: unique among the stream's unanswered requests; one is chosen when absent). */
  readonly id?: string;
  /** The outputs to return, in this order; absent: every output in the model's order. */
  readonly outputs?: readonly string[];
  /** Request parameters (strings, numbers, booleans). */
  readonly parameters?: V2Parameters;
  /** How the inputs travel: `raw` (default, `raw_input_contents`) or `typed` (`contents`, no FP16). */
  readonly contents?: 'raw' | 'typed';
}

export interface KServeInferResult {
  readonly modelName: string;
  readonly modelVersion: string;
  /** The request's id as the server echoed it ('' when none was sent to a unary call). */
  readonly id: string;
  /** The outputs by name, in the order the server sent them. */
  readonly outputs: Instance;
  readonly parameters: V2Parameters;
}

/** A ModelInferRequest from the caller's inputs and options. */
function encodeRequest(model: string, inputs: InputInstance, options: KServeInferOptions, id: string): WireModelInferRequest {
  nonEmpty('model', model, WHO);
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) throw bad('inputs must be an object of named tensors', WHO);
  const typed = options.contents === 'typed';
  if (options.contents !== undefined && options.contents !== 'raw' && !typed) throw bad(`contents must be 'raw' or 'typed', got ${JSON.stringify(options.contents)}`, WHO);
  const tensors: WireInferTensor[] = [];
  const raw: Uint8Array[] = [];
  for (const [name, value] of Object.entries(inputs)) {
    const t = toInputTensor(value, `input '${name}'`);
    const wire: WireInferTensor = { name, datatype: toV2Datatype(t.dtype), shape: [...t.shape] };
    if (typed) wire.contents = typedContents(t, `input '${name}'`);
    else raw.push(tensorToRaw(t));
    tensors.push(wire);
  }
  const version = options.version === undefined ? '' : String(options.version);
  return {
    model_name: model,
    model_version: version,
    id,
    parameters: encodeParameters(options.parameters),
    inputs: tensors,
    outputs: (options.outputs ?? []).map((name) => ({ name })),
    raw_input_contents: raw,
  };
}

/** The caller's result from a ModelInferResponse (raw or typed outputs). */
function decodeResponse(res: WireModelInferResponse): KServeInferResult {
  const outputs: Instance = {};
  try {
    for (const t of decodeV2Tensors(res.outputs ?? [], res.raw_output_contents ?? [], 'output')) outputs[t.name] = t.tensor;
  } catch (err) {
    throw new ServingError('E_INTERNAL', `the server sent a malformed tensor: ${(err as Error).message}`);
  }
  return { modelName: res.model_name ?? '', modelVersion: res.model_version ?? '', id: res.id ?? '', outputs, parameters: decodeParameters(res.parameters) ?? {} };
}

function tensorMetadata(t: WireV2TensorMetadata): V2TensorMetadata {
  return { name: t.name ?? '', datatype: (t.datatype ?? '') as V2TensorMetadata['datatype'], shape: (t.shape ?? []).map(Number) };
}

export class KServeClient {
  private readonly grpc: GrpcClient;
  private readonly ownsChannel: boolean;
  readonly timeoutMs: number | undefined;

  /** A client with its own channel; options as `Client`'s (`versionNumber` is not used: give `version` per call). */
  constructor(address: string, options?: ClientOptions);
  /** @internal `Client.v2`: a client on an existing channel. */
  constructor(channel: { grpc: GrpcClient; timeoutMs: number | undefined });
  constructor(target: string | { grpc: GrpcClient; timeoutMs: number | undefined }, options: ClientOptions = {}) {
    if (typeof target === 'object' && target !== null && target.grpc instanceof GrpcClient) {
      this.grpc = target.grpc;
      this.timeoutMs = target.timeoutMs;
      this.ownsChannel = false;
      return;
    }
    const { grpc, settings } = openChannel(nonEmpty('address', target, WHO), options);
    this.grpc = grpc;
    this.timeoutMs = settings.timeoutMs;
    this.ownsChannel = true;
  }

  /** @internal A client on `grpc`'s channel (Client.v2); closing it leaves the channel open. */
  static onChannel(grpc: GrpcClient, options: { timeoutMs: number | undefined }): KServeClient {
    return new KServeClient({ grpc, timeoutMs: options.timeoutMs });
  }

  private call<K extends KServeRpc>(rpc: K, request: KServeMessages[K][0]): Promise<KServeMessages[K][1]> {
    const method = protos().kserve[rpc];
    return new Promise((resolve, reject) => {
      try {
        this.grpc.makeUnaryRequest(
          KSERVE_PATH[rpc],
          method.requestSerialize,
          method.responseDeserialize,
          request,
          new Metadata(),
          { deadline: deadlineOf(this.timeoutMs) },
          (err, value) => (err ? reject(serviceError(err)) : resolve(value!)),
        );
      } catch (err) {
        // grpc-js throws at once on a closed channel
        reject(new ServingError('E_UNAVAILABLE', `${WHO}: the client was closed (${(err as Error).message})`));
      }
    });
  }

  /** ServerLive: true when the server answers live. */
  async serverLive(): Promise<boolean> {
    return (await this.call('ServerLive', {})).live === true;
  }

  /** ServerReady: true when every loaded model can serve. */
  async serverReady(): Promise<boolean> {
    return (await this.call('ServerReady', {})).ready === true;
  }

  /** ModelReady; an unknown model or version rejects (E_UNKNOWN_SERVABLE, ...: NOT_FOUND). */
  async modelReady(model: string, version?: string | number): Promise<boolean> {
    return (await this.call('ModelReady', { name: model, version: version === undefined ? '' : String(version) })).ready === true;
  }

  async serverMetadata(): Promise<V2ServerMetadata> {
    const m = await this.call('ServerMetadata', {});
    return { name: m.name ?? '', version: m.version ?? '', extensions: m.extensions ?? [] };
  }

  /** ModelMetadata: versions, platform, inputs and outputs (-1 for a variable dim), properties. */
  async modelMetadata(model: string, version?: string | number): Promise<V2ModelMetadata> {
    const m = await this.call('ModelMetadata', { name: model, version: version === undefined ? '' : String(version) });
    return {
      name: m.name ?? '',
      versions: m.versions ?? [],
      platform: m.platform ?? '',
      inputs: (m.inputs ?? []).map(tensorMetadata),
      outputs: (m.outputs ?? []).map(tensorMetadata),
      properties: m.properties ?? {},
    };
  }

  /** ModelInfer: one inference; rejects with the call's ServingError. */
  async infer(model: string, inputs: InputInstance, options: KServeInferOptions = {}): Promise<KServeInferResult> {
    const request = encodeRequest(model, inputs, options, options.id ?? '');
    return decodeResponse(await this.call('ModelInfer', request));
  }

  /** Opens a ModelStreamInfer stream (see KServeStream). */
  stream(): KServeStream {
    return new KServeStream(this.grpc, this.timeoutMs);
  }

  /** Closes the channel (a client from `Client.v2` closes with its Client instead). */
  close(): void {
    if (this.ownsChannel) this.grpc.close();
  }
}

/**
 * Many inferences on one `ModelStreamInfer` stream: each `infer` sends a request with its id
 * (the caller's, or a fresh one) and resolves when the response with that id arrives
 * (responses come in completion order). A request that fails rejects with its error; the
 * stream stays open. `end()` half-closes and resolves when every request is answered;
 * `cancel()` rejects what is pending and the server drops its work.
 */
export class KServeStream extends PipelinedClientStream<WireModelInferRequest, WireModelStreamInferResponse, string, KServeInferResult, undefined> {
  private nextId = 1;

  constructor(grpc: GrpcClient, timeoutMs: number | undefined) {
    super(grpc, KSERVE_PATH.ModelStreamInfer, protos().kserve.ModelStreamInfer, timeoutMs);
  }

  /** One inference on the stream; like KServeClient.infer. */
  infer(model: string, inputs: InputInstance, options: KServeInferOptions = {}): Promise<KServeInferResult> {
    const refused = this.refusal(WHO);
    if (refused) return Promise.reject(refused);
    let id = options.id;
    if (id === undefined) {
      do id = `s${this.nextId++}`;
      while (this.isPending(id));
    } else if (this.isPending(id)) {
      return Promise.reject(bad(`request id ${JSON.stringify(id)} is already in flight on this stream`, WHO));
    }
    let request: WireModelInferRequest;
    try {
      request = encodeRequest(model, inputs, options, id);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.send(id, request, undefined);
  }

  protected onReply(reply: WireModelStreamInferResponse): void {
    const res = reply.infer_response ?? {};
    const p = this.take(res.id ?? '');
    if (!p) return; // answered after its local deadline
    try {
      if (reply.error_message) {
        const code = res.parameters?.[STREAM_ERROR_CODE_PARAMETER]?.string_param;
        p.reject(new ServingError(isErrorCode(code) ? code : 'E_MODEL_FAILED', reply.error_message));
      } else {
        p.resolve(decodeResponse(res));
      }
    } catch (err) {
      p.reject(err as ServingError);
    }
  }
}
