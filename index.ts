/**
 * actorserve's public API: `server` (start servables, engine API, transports), `register`
 * (used by servable_config.ts), tensors, dtypes and errors.
 */
import * as register from './engine/register.js';
import { type DeclareServableOptions, type DistributedStartOptions, declareServable } from './engine/distributed.js';
import { type Agents, type StartupAgentsOptions, startupAgents } from './actors/agent-startup.js';
import { ServingServer, createServer } from './server.js';

export const server: ServingServer = new ServingServer();
export { register, ServingServer, createServer };

/** MindSpore's `distributed` module: one servable over many ranks hosted by agents (docs/distributed.md). */
export interface Distributed {
  /** In servable_config.ts: declares the servable's model as `rankSize` ranks on agents. */
  declareServable(options: DeclareServableOptions): register.Model;
  /** In the server's script: serves the servable once every rank of its rank table registered (on `server`). */
  startServable(servableDirectory: string, servableName: string, options: DistributedStartOptions): Promise<void>;
  /** On each agent host: starts one rank process per local rank; resolves once all registered. */
  startupAgents(options: StartupAgentsOptions): Promise<Agents>;
}

export const distributed: Distributed = {
  declareServable,
  startServable: (servableDirectory, servableName, options) => server.startDistributedServable(servableDirectory, servableName, options),
  startupAgents,
};
export type { DeclareServableOptions, DistributedStartOptions, CombineRule } from './engine/distributed.js';
export type { Agents, AgentRankInfo, StartupAgentsOptions } from './actors/agent-startup.js';
export { ServingEngine } from './facade/engine.js';
export { ServableStartConfig, type ServableStartOptions, type DecMode, type DeviceType } from './engine/start-config.js';
export type { EngineInferOptions, TargetInferOptions, MethodTarget, ServableInfo, RequestLogEntry } from './facade/engine.js';
export type { InferOptions, InstanceOutcome, MethodInfo, MethodInput, RequestParameters, StreamEvent } from './engine/inference.js';
export type { SequenceOptions, SequenceRequest, SequenceStateOptions, StateInitial } from './engine/sequence.js';
export { Cancellation, type CancelSignal } from './engine/cancellation.js';
export { type Tensor, type TensorOf, type Instance, type NumericTensor, type BinaryTensor, tensor, stringTensor, tensorStrings } from './engine/tensor.js';
export { DTYPES, type DType, type NumericDType, type BinaryDType } from './engine/dtypes.js';
export { castTensor } from './native/dtype-cast.js';
export { ServingError, InstanceErrors, ERROR_CODES, type ErrorCode } from './engine/errors.js';
export type { Model, ModelCallOptions, Placeholder, DeclareModelOptions, StageOptions, StreamContext, MethodOptions, MethodInputOptions } from './engine/register.js';
export type { RestServer, RestServerOptions } from './transports/rest/server.js';
export type { GrpcServer, GrpcServerOptions } from './transports/grpc/server.js';
export { SSLConfig, type SSLConfigFactory } from './transports/ssl-config.js';
