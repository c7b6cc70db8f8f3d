/**
 * The agent link's wire (transports/grpc/protos/actorserve_distributed.proto): the proto's
 * services loaded with @grpc/proto-loader, the messages' TypeScript shapes as proto-loader
 * hands them over (snake_case, every field present on the decoding side), tensors to and from
 * raw bytes, and a promise around a unary call. Used by both ends: the coordinator
 * (agent-coordinator.ts) and the rank processes (agent-rank.ts).
 *
 * The proto sits with the other protos under transports/grpc/protos/ and is read from the
 * package root at run time; nothing here imports a transport module.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { type NumericArray, type NumericDType, TYPED_ARRAY, isDType, isNumericDType } from '../engine/dtypes.js';
import { packageRootOf } from '../engine/package-root.js';
import { ServingError } from '../engine/errors.js';
import type { SSLConfig } from '../engine/ssl-config.js';
import type { BatchInput } from './device.js';
import type { GraphInfo, ValueInfo } from './protocol.js';

/** Version of the agent link's messages; both ends compare it (see the proto's header). */
export const AGENT_PROTOCOL_VERSION = 2;

export interface WireTensor {
  dtype: string;
  dims: number[];
  data: Uint8Array;
}

export interface WireTensorInfo {
  name: string;
  dtype: string;
  dims: string[];
}

export interface WireGraphSpec {
  inputs: WireTensorInfo[];
  outputs: WireTensorInfo[];
}

export interface WireRankEntry {
  rank_id: number;
  server_id: string;
  device_id: number;
}

export interface AcquireConfigRequest {
  protocol_version: number;
}

export interface AcquireConfigReply {
  protocol_version: number;
  servable_name: string;
  version_number: number;
  rank_size: number;
  stage_size: number;
  ranks: WireRankEntry[];
  heartbeat_interval_ms: number;
  heartbeat_timeout_ms: number;
}

export interface RegisterRequest {
  protocol_version: number;
  rank_id: number;
  address: string;
  pid: number;
  graphs: WireGraphSpec[];
}

export interface RegisterReply {
  session: string;
}

export interface HeartbeatRequest {
  rank_id: number;
  address: string;
  session: string;
}

export interface HeartbeatReply {
  known: boolean;
}

export interface ExitRequest {
  rank_id: number;
  address: string;
  reason: string;
}

export type ExitReply = Record<string, never>;

export interface PredictRequest {
  inputs: WireTensor[];
  subgraph: number;
  /** The batch's id on the rank's stream; the reply carries it back. */
  id: number;
}

export interface PredictReply {
  outputs: WireTensor[];
  error: string;
  id: number;
}

export const COORDINATOR_SERVICE = 'actorserve.distributed.v1.Coordinator';
export const AGENT_SERVICE = 'actorserve.distributed.v1.Agent';

interface AgentProtos {
  readonly coordinator: grpc.ServiceDefinition;
  readonly agent: grpc.ServiceDefinition;
  readonly CoordinatorClient: grpc.ServiceClientConstructor;
  /**
   * The coordinator's client of a rank's Agent service. Its PredictStream writes bytes as
   * they are (`encodePredictRequest`): a batch is encoded once and written to every rank.
   */
  readonly AgentClient: grpc.ServiceClientConstructor;
  readonly encodePredictRequest: (request: PredictRequest) => Buffer;
}

let loaded: AgentProtos | undefined;

/** The two services (loaded once, on first use). */
export function agentProtos(): AgentProtos {
  if (loaded) return loaded;
  const dir = path.join(packageRootOf(import.meta.url), 'transports', 'grpc', 'protos');
  const def = loadSync('actorserve_distributed.proto', {
    includeDirs: [dir],
    keepCase: true,
    longs: Number,
    enums: Number,
    defaults: true,
    arrays: true,
    objects: false,
  });
  const pkg = grpc.loadPackageDefinition(def);
  const ns = (pkg.actorserve as grpc.GrpcObject).distributed as grpc.GrpcObject;
  const v1 = ns.v1 as grpc.GrpcObject;
  const CoordinatorClient = v1.Coordinator as grpc.ServiceClientConstructor;
  const agent = (v1.Agent as grpc.ServiceClientConstructor).service;
  const stream = agent['PredictStream']!;
  const AgentClient = grpc.makeGenericClientConstructor({ ...agent, PredictStream: { ...stream, requestSerialize: (bytes: Buffer) => bytes } }, 'Agent');
  const encodePredictRequest = stream.requestSerialize as (request: PredictRequest) => Buffer;
  loaded = { coordinator: CoordinatorClient.service, agent, CoordinatorClient, AgentClient, encodePredictRequest };
  return loaded;
}

/** Internal channels carry whole batches: allow big messages both ways (MindSpore: 512 MiB). */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_send_message_length': 512 * 1024 * 1024,
  'grpc.max_receive_message_length': 512 * 1024 * 1024,
};

/**
 * The ranks' and start-up process's channel to the coordinator: as CHANNEL_OPTIONS, with the
 * reconnect backoff capped at 1 s (grpc-js's grows to 120 s), so that a coordinator back within
 * coordinatorRetrySeconds is reached at the next heartbeat, not after a long backoff.
 */
export const COORDINATOR_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  ...CHANNEL_OPTIONS,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1000,
};

/** One unary call as a promise, with a deadline of `timeoutMs` from now. */
export function unary<Req, Rep>(client: grpc.Client, method: string, request: Req, timeoutMs: number): Promise<Rep> {
  return new Promise<Rep>((resolve, reject) => {
    const call = (client as unknown as Record<string, (r: Req, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: Rep) => void) => void>)[method]!;
    call.call(client, request, { deadline: Date.now() + timeoutMs }, (err, value) => (err ? reject(err) : resolve(value!)));
  });
}

/** A gRPC error's status code, or undefined for anything else. */
export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A refusal the other end can show as is: FAILED_PRECONDITION with the message. */
export function refusal(message: string): Partial<grpc.StatusObject> {
  return { code: grpc.status.FAILED_PRECONDITION, details: message };
}

// ---- rank processes ----

/** What the start-up process tells a rank process (ACTORSERVE_AGENT_RANK). */
export interface RankSettings {
  readonly coordinator: string;
  readonly rankId: number;
  readonly deviceId: number;
  /** ip:port of this rank's Agent service. */
  readonly address: string;
  /** The rank's model files (several: subgraphs), absolute paths. */
  readonly modelFiles: readonly string[];
  readonly deviceType: 'cpu' | 'cuda';
  readonly intraOpThreads: number;
  readonly heartbeatIntervalMs: number;
  readonly coordinatorRetryMs: number;
  /** TLS on the agent link (absolute paths; agent-tls.ts). */
  readonly sslConfig?: SSLConfig;
  /** Hex of the decryption key of encrypted model files. */
  readonly decKey?: string;
  readonly decMode?: 'AES-GCM' | 'AES-CBC';
}

/** What a rank process tells its start-up process. */
export type RankMessage =
  | { readonly type: 'registered'; readonly rankId: number; readonly address: string; readonly pid: number }
  | { readonly type: 'failed'; readonly rankId: number; readonly error: string };

/** Exit codes: 0 stopped (asked to), 1 failed to start, 3 the coordinator stayed away. */
export const RANK_EXIT = { stopped: 0, failed: 1, coordinatorGone: 3 } as const;

// ---- tensors ----

/** A batch input as one tensor of raw bytes (the parts, instance after instance). */
export function inputToWire(input: BatchInput): WireTensor {
  if (!('parts' in input)) throw new ServingError('E_INVALID_DTYPE', `distributed servables take numeric tensors only, not ${input.dtype}`);
  const total = input.parts.reduce((n, p) => n + p.byteLength, 0);
  const data = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of input.parts) {
    data.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return { dtype: input.dtype, dims: [...input.dims], data };
}

export function arrayToWire(dtype: NumericDType, dims: readonly number[], array: NumericArray): WireTensor {
  return { dtype, dims: [...dims], data: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) };
}

/** A wire tensor's elements as a typed array (copied when the bytes are not aligned for it). */
export function wireToArray(t: WireTensor, where: string): { dtype: NumericDType; dims: number[]; data: NumericArray } {
  if (!isDType(t.dtype) || !isNumericDType(t.dtype)) throw new ServingError('E_MODEL_FAILED', `${where}: unsupported dtype '${t.dtype}'`);
  const Ctor = TYPED_ARRAY[t.dtype];
  const bpe = Ctor.BYTES_PER_ELEMENT;
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.byteLength !== count * bpe) {
    throw new ServingError('E_MODEL_FAILED', `${where}: ${t.data.byteLength} bytes do not hold ${t.dtype} [${t.dims.join(', ')}] (${count * bpe} bytes)`);
  }
  const bytes = t.data.byteOffset % bpe === 0 ? t.data : new Uint8Array(t.data);
  return { dtype: t.dtype, dims: t.dims, data: new Ctor(bytes.buffer, bytes.byteOffset, count) };
}

// ---- graph descriptions ----

export function graphToWire(g: GraphInfo): WireGraphSpec {
  const info = (v: ValueInfo): WireTensorInfo => ({ name: v.name, dtype: v.dtype, dims: v.dims.map(String) });
  return { inputs: g.inputs.map(info), outputs: g.outputs.map(info) };
}

export function graphFromWire(g: WireGraphSpec): GraphInfo {
  const info = (v: WireTensorInfo): ValueInfo => ({
    name: v.name,
    dtype: isDType(v.dtype) ? v.dtype : 'float32',
    dims: v.dims.map((d) => (/^-?\d+$/.test(d) ? Number(d) : d)),
  });
  return { inputs: g.inputs.map(info), outputs: g.outputs.map(info) };
}

/** `float32 [-1, 96]`: how a graph value reads in error messages. */
export function describeValue(v: ValueInfo): string {
  return `'${v.name}' ${v.dtype} [${v.dims.join(', ')}]`;
}
