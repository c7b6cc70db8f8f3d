/**
 * The gRPC protos, loaded at run time with @grpc/proto-loader from the source tree
 * (`<package root>/transports/grpc/protos/`), and the TypeScript shapes of their messages as
 * proto-loader hands them over (snake_case keys, enums and 64-bit integers as numbers, bytes
 * as Buffers, every field present with its default on the decoding side).
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
}

export interface WireStreamReply {
  id?: number;
  error?: WireError | null;
  results?: WireInstanceResult[];
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

export const PROTO_DIR = path.join(packageRootOf(import.meta.url), 'transports', 'grpc', 'protos');

export interface Protos {
  readonly msService: ServiceDefinition;
  readonly actorServe: ServiceDefinition;
  readonly predict: MethodDefinition<WirePredictRequest, WirePredictReply>;
  readonly predictStream: MethodDefinition<WireStreamRequest, WireStreamReply>;
  readonly modelMetadata: MethodDefinition<WireModelMetadataRequest, WireModelMetadataReply>;
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
  const msService = def[MS_SERVICE] as unknown as ServiceDefinition;
  const actorServe = def[ACTORSERVE_SERVICE] as unknown as ServiceDefinition;
  loaded = {
    msService,
    actorServe,
    predict: msService['Predict'] as MethodDefinition<WirePredictRequest, WirePredictReply>,
    predictStream: actorServe['PredictStream'] as MethodDefinition<WireStreamRequest, WireStreamReply>,
    modelMetadata: actorServe['GetModelMetadata'] as MethodDefinition<WireModelMetadataRequest, WireModelMetadataReply>,
  };
  return loaded;
}
