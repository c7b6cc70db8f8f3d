/**
 * The messages between the supervisor (main thread) and a device actor (worker thread).
 * Tensor data never travels inside these messages for numeric dtypes: it sits in the slot's
 * SharedArrayBuffer and the message carries only where (offset, element count). String and
 * bytes tensors, rare as model inputs, travel inline.
 */
import type { DType } from '../engine/dtypes.js';

/** Start-up data of a device actor (workerData). */
export interface DeviceActorInit {
  readonly deviceId: number;
  readonly deviceType: 'cpu' | 'cuda';
  readonly intraOpThreads: number;
  /** One entry per model; each lists its subgraph files (absolute paths). */
  readonly models: readonly { readonly key: string; readonly files: readonly string[] }[];
  /** Present for encrypted model files. */
  readonly decryption?: { readonly key: Uint8Array; readonly mode: 'AES-GCM' | 'AES-CBC' };
}

/** Shape of a model input or output as ONNX Runtime reports it; a string or -1 is a dynamic dim. */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly dims: readonly (number | string)[];
}

export interface GraphInfo {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

/** A tensor placed in a slot buffer, or carried inline for string/bytes. */
export type TensorRef =
  | { readonly dtype: DType; readonly dims: readonly number[]; readonly offset: number; readonly length: number }
  | { readonly dtype: 'string' | 'bytes'; readonly dims: readonly number[]; readonly strings: readonly Uint8Array[] };

export interface RunMessage {
  readonly type: 'run';
  readonly id: number;
  readonly slot: number;
  /** Sent only when the slot's buffer is new to the actor. */
  readonly buffer?: SharedArrayBuffer;
  readonly model: number;
  readonly subgraph: number;
  readonly inputs: readonly TensorRef[];
}

/**
 * `stop`: finish the batches already received, release the sessions and exit.
 * `crash`: die at once by an uncaught error (fault injection for tests and operators).
 * Both are handled between batches, never while ONNX Runtime is running: terminating a
 * thread inside `session.run` makes onnxruntime-node throw a C++ exception during teardown,
 * which aborts the whole process.
 */
export type ControlMessage = { readonly type: 'stop' } | { readonly type: 'crash' };

export type ToDevice = RunMessage | ControlMessage;

export interface ReadyMessage {
  readonly type: 'ready';
  /** [model][subgraph] */
  readonly graphs: readonly (readonly GraphInfo[])[];
}

export interface LoadErrorMessage {
  readonly type: 'load-error';
  readonly message: string;
}

export interface ResultMessage {
  readonly type: 'result';
  readonly id: number;
  /** Sent when the outputs did not fit the slot: the slot's new buffer. */
  readonly buffer?: SharedArrayBuffer;
  readonly outputs: readonly TensorRef[];
}

export interface RunErrorMessage {
  readonly type: 'run-error';
  readonly id: number;
  readonly message: string;
}

export type FromDevice = ReadyMessage | LoadErrorMessage | ResultMessage | RunErrorMessage;

/** Byte offsets in slot buffers are aligned to 8 so every typed-array view is legal. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}
