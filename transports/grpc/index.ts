/** The gRPC transport: `startGrpcServer(engine, address, options)`, the client, the `infer` command. */
export { startGrpcServer, type GrpcServer, type GrpcServerOptions, type GrpcServerStats, type SSLConfig } from './server.js';
export {
  Client,
  ClientStream,
  type ClientOptions,
  type PredictCallOptions,
  type GenerateOptions,
  type ClientStreamEvent,
  type InferStreamOptions,
  type StreamParameters,
  type SSLConfig as ClientSSLConfig,
  type InstanceOutcome,
} from './client.js';
export { KServeClient, KServeStream, type KServeInferOptions, type KServeInferResult } from './kserve-client.js';
export type { InputInstance, InputValue, TensorLike } from './values.js';
export { runInferCommand, INFER_USAGE } from './infer-cli.js';
export { runGenerateCommand, GENERATE_USAGE } from './generate-cli.js';
export { readNpy, writeNpy } from '../../engine/npy.js';
