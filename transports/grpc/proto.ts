/**
 * The gRPC protos, loaded at run time with @grpc/proto-loader from the source tree
 * (`<package root>/transports/grpc/protos/`), and the TypeScript shapes of their messages as
 * proto-loader hands them over (snake_case keys, enums and 64-bit integers as numbers, bytes
 * as Buffers, every field present with its default on the decoding side). The Open Inference
 * Protocol's proto is loaded on its own with 64-bit integers as decimal strings, so INT64 and
 * UINT64 contents keep every bit.
 */
import path from 'node:path';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { packageRootOf } from '../../engine/package-root.js';

export const MS_SERVICE = 'mindspore.serving.proto.MSService';
export const ACTORSERVE_SERVICE = 'actorserve.v1.ActorServe';
export const PREDICT_PATH = `/${MS_SERVICE}/Predict`;
export const PREDICT_STREAM_PATH = `/${ACTORSERVE_SERVICE}/PredictStream`;
export const MODEL_METADATA_PATH = `/${ACTORSERVE_SERVICE}/GetModelMetadata`;
export const INFER_STREAM_PATH = `/${ACTORSERVE_SERVICE}/InferStream`;
export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';
/** Full method paths of the Open Inference Protocol's service, by rpc name. */
export const KSERVE_PATH = {
  ServerLive: `/${INFERENCE_SERVICE}/ServerLive`,
  ServerReady: `/${INFERENCE_SERVICE}/ServerReady`,
  ModelReady: `/${INFERENCE_SERVICE}/ModelReady`,
  ServerMetadata: `/${INFERENCE_SERVICE}/ServerMetadata`,
  ModelMetadata: `/${INFERENCE_SERVICE}/ModelMetadata`,
  ModelInfer: `/${INFERENCE_SERVICE}/ModelInfer`,
  ModelStreamInfer: `/${INFERENCE_SERVICE}/ModelStreamInfer`,
} as const;

/** Trailer naming the actorserve error code of each `error_msg` entry (comma-separated, '' = ok). */
export const ERROR_CODES_TRAILER = 'actorserve-error-codes';
/** Trailer naming the actorserve error code of a call that ended with a non-OK status. */
export const ERROR_CODE_TRAILER = 'actorserve-error-code';

// ---- messages (mindspore.serving.proto) ----

export interface WireTensorShape {
  dims?: number[];
}

export interface WireShmTensorData {
  memory_key?: string;
  bytes_size?: number;
  data_offset?: number;
  data_size?: number;
}

export interface WireTensor {
  shape?: WireTensorShape | null;
  dtype?: number;
  data?: Uint8Array;
  shm_data?: WireShmTensorData | null;
  bytes_val?: Uint8Array[];
  /** Which member of the oneof is set (decoding side). */
  tensor_data?: 'data' | 'shm_data';
}

export interface WireInstance {
  items?: Record<string, WireTensor>;
  output_buffers?: Record<string, WireShmTensorData>;
}

export interface WireServableSpec {
  name?: string;
  method_name?: string;
  version_number?: number;
}

export interface WireErrorMsg {
  error_code?: number;
  error_msg?: Uint8Array;
}

export interface WirePredictRequest {
  servable_spec?: WireServableSpec | null;
  instances?: WireInstance[];
}

export interface WirePredictReply {
  servable_spec?: WireServableSpec | null;
  instances?: WireInstance[];
  error_msg?: WireErrorMsg[];
}

// ---- messages (actorserve.v1) ----

export interface WireError {
  code?: string;
  message?: string;
}

export interface WireInstanceResult {
  outputs?: Record<string, WireTensor>;
  error?: WireError | null;
}

export interface WireStreamRequest {
  id?: number;
  servable_spec?: WireServableSpec | null;
  instances?: WireInstance[];
  timeout_ms?: number;
  sequence?: WireSequence | null;
}

/** actorserve.v1.Sequence: `id` names the oneof member that is set (proto-loader's `oneofs`). */
export interface WireSequence {
  number_id?: number;
  string_id?: string;
  id?: 'number_id' | 'string_id';
  start?: boolean;
  end?: boolean;
}

export interface WireStreamReply {
  id?: number;
  error?: WireError | null;
  results?: WireInstanceResult[];
}

/** A request parameter (actorserve.v1 Parameter): one of the four set. */
export interface WireParameter {
  bool_param?: boolean;
  int64_param?: number;
  double_param?: number;
  string_param?: string;
  /** Which member of the oneof is set (decoding side). */
  value?: 'bool_param' | 'int64_param' | 'double_param' | 'string_param';
}

export interface WireInferStreamRequest {
  servable_spec?: WireServableSpec | null;
  instances?: WireInstance[];
  parameters?: Record<string, WireParameter>;
  timeout_ms?: number;
}

export interface WireInferStreamReply {
  index?: number;
  outputs?: Record<string, WireTensor>;
  error?: WireError | null;
}

export interface WireModelMetadataRequest {
  name?: string;
  version_number?: number;
}

export interface WireTensorMetadata {
  name?: string;
  dtype?: string;
  dims?: number[];
  has_dims?: boolean;
}

export interface WireMethodMetadata {
  name?: string;
  inputs?: WireTensorMetadata[];
  outputs?: WireTensorMetadata[];
}

export interface WireModelMetadataReply {
  name?: string;
  version?: number;
  versions?: number[];
  methods?: WireMethodMetadata[];
}

// ---- messages (inference, the Open Inference Protocol) ----
// Loaded with 64-bit integers as decimal strings (int64/uint64 contents keep every bit);
// the encoding side takes numbers or strings for them.

/** An int64/uint64 field: a decimal string when decoded; a number or a string when encoded. */
export type WireLong = number | string;

export interface WireInferParameter {
  bool_param?: boolean;
  int64_param?: WireLong;
  string_param?: string;
  double_param?: number;
  uint64_param?: WireLong;
  /** Which member of the oneof is set (decoding side). */
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
}

export type WireInferParameters = Record<string, WireInferParameter>;

export interface WireInferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: WireLong[];
  uint_contents?: number[];
  uint64_contents?: WireLong[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface WireInferTensor {
  name?: string;
  datatype?: string;
  shape?: WireLong[];
  parameters?: WireInferParameters;
  contents?: WireInferTensorContents | null;
}

export interface WireInferRequestedOutput {
  name?: string;
  parameters?: WireInferParameters;
}

export interface WireModelInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: WireInferParameters;
  inputs?: WireInferTensor[];
  outputs?: WireInferRequestedOutput[];
  raw_input_contents?: Uint8Array[];
}

export interface WireModelInferResponse {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: WireInferParameters;
  outputs?: WireInferTensor[];
  raw_output_contents?: Uint8Array[];
}

export interface WireModelStreamInferResponse {
  error_message?: string;
  infer_response?: WireModelInferResponse | null;
}

export interface WireModelRequest {
  name?: string;
  version?: string;
}

export interface WireV2TensorMetadata {
  name?: string;
  datatype?: string;
  shape?: WireLong[];
}

export interface WireV2ModelMetadata {
  name?: string;
  versions?: string[];
  platform?: string;
  inputs?: WireV2TensorMetadata[];
  outputs?: WireV2TensorMetadata[];
  properties?: Record<string, string>;
}

export interface WireServerMetadata {
  name?: string;
  version?: string;
  extensions?: string[];
}

/** The messages of GRPCInferenceService's RPCs, by rpc name: [request, response]. */
export interface KServeMessages {
  ServerLive: [Record<string, never>, { live?: boolean }];
  ServerReady: [Record<string, never>, { ready?: boolean }];
  ModelReady: [WireModelRequest, { ready?: boolean }];
  ServerMetadata: [Record<string, never>, WireServerMetadata];
  ModelMetadata: [WireModelRequest, WireV2ModelMetadata];
  ModelInfer: [WireModelInferRequest, WireModelInferResponse];
  ModelStreamInfer: [WireModelInferRequest, WireModelStreamInferResponse];
}

export type KServeRpc = keyof KServeMessages;

export type KServeMethods = { readonly [K in KServeRpc]: MethodDefinition<KServeMessages[K][0], KServeMessages[K][1]> };

export const PROTO_DIR = path.join(packageRootOf(import.meta.url), 'transports', 'grpc', 'protos');

export interface Protos {
  readonly msService: ServiceDefinition;
  readonly actorServe: ServiceDefinition;
  readonly predict: MethodDefinition<WirePredictRequest, WirePredictReply>;
  readonly predictStream: MethodDefinition<WireStreamRequest, WireStreamReply>;
  readonly modelMetadata: MethodDefinition<WireModelMetadataRequest, WireModelMetadataReply>;
  readonly inferStream: MethodDefinition<WireInferStreamRequest, WireInferStreamReply>;
  readonly inference: ServiceDefinition;
  readonly kserve: KServeMethods;
}

let loaded: Protos | undefined;

/** The service definitions (loaded once, on first use). */
export function protos(): Protos {
  if (loaded) return loaded;
  const def = loadSync(['ms_service.proto', 'actorserve.proto'], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
    arrays: true,
    objects: false,
    oneofs: true,
  });
  // 64-bit integers as strings here: INT64/UINT64 contents must keep every bit
  const oip = loadSync('grpc_inference_service.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: Number,
    defaults: true,
    arrays: true,
    objects: false,
    oneofs: true,
  });
  const msService = def[MS_SERVICE] as unknown as ServiceDefinition;
  const inference = oip[INFERENCE_SERVICE] as unknown as ServiceDefinition;
  const actorServe = def[ACTORSERVE_SERVICE] as unknown as ServiceDefinition;
  loaded = {
    msService,
    actorServe,
    predict: msService['Predict'] as MethodDefinition<WirePredictRequest, WirePredictReply>,
    predictStream: actorServe['PredictStream'] as MethodDefinition<WireStreamRequest, WireStreamReply>,
    modelMetadata: actorServe['GetModelMetadata'] as MethodDefinition<WireModelMetadataRequest, WireModelMetadataReply>,
    inferStream: actorServe['InferStream'] as MethodDefinition<WireInferStreamRequest, WireInferStreamReply>,
    inference,
    kserve: inference as unknown as KServeMethods,
  };
  return loaded;
}
