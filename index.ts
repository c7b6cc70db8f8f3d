/**
 * actorserve's public API: `server` (start servables, engine API), `register` (used by
 * servable_config.ts), tensors, dtypes and errors.
 */
import * as register from './engine/register.js';
import { ServingServer, createServer } from './engine/server.js';

export const server: ServingServer = new ServingServer();
export { register, ServingServer, createServer };
export { ServableStartConfig, type ServableStartOptions, type DecMode, type DeviceType } from './engine/start-config.js';
export type { EngineInferOptions, ServableInfo } from './engine/server.js';
export type { InferOptions, InstanceOutcome, MethodInfo } from './actors/servable-runtime.js';
export { Cancellation, type CancelSignal } from './engine/cancellation.js';
export { type Tensor, type TensorOf, type Instance, type NumericTensor, type BinaryTensor, tensor, stringTensor, tensorStrings } from './engine/tensor.js';
export { DTYPES, type DType, type NumericDType, type BinaryDType } from './engine/dtypes.js';
export { ServingError, InstanceErrors, ERROR_CODES, type ErrorCode } from './engine/errors.js';
export type { Model, Placeholder, DeclareModelOptions, StageOptions, MethodOptions } from './engine/register.js';
