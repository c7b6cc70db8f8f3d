/**
 * The device thread protocol: what the supervisor (main thread) and a device actor (worker
 * thread) say to each other, on two channels.
 *
 * - The data path, in two shared-memory mailboxes (mailbox.ts): RunFrames go in, ReplyFrames
 *   come out, encoded by batch-frames.ts. Tensor data never travels inside a frame: it sits
 *   in the slot's SharedArrayBuffer and the frame carries only where (offset, element count).
 *   No message port is crossed per batch; only a slot's new, bigger buffer travels as a
 *   SlotBufferMessage on the worker's own port (shared memory cannot go into a frame).
 * - The control plane, on a dedicated MessageChannel port: `DeviceControl`, called through
 *   comlink (load, health, stats, drain, stop, crash). Control calls are rare and may cost a
 *   round trip of their own (perf/device-control-plane.ts measures it). The supervisor rings
 *   the request mailbox's doorbell after each call, so an actor asleep in `Atomics.wait`
 *   returns to its event loop and reads the control port.
 *
 * Each message says whether it may cross a network later, when agents host devices on other
 * hosts. Shared memory is one process's: a remote data path carries the tensor bytes in place
 * of slot offsets, so the offset-based messages here stay between threads.
 */
import type { MessagePort } from 'node:worker_threads';
import type { DType } from '../engine/dtypes.js';
import type { LoadedStateDeclaration } from '../engine/sequence.js';

/**
 * Version of the messages and control calls below. Both sides compare it at start-up (the
 * supervisor sends it in the start-up data, the actor answers `load` with its own) and a
 * mismatch fails the load. Bump it on any change of a shape below.
 */
export const DEVICE_PROTOCOL_VERSION = 5;

/** The load error both sides raise when their versions differ; undefined when they agree. */
export function protocolMismatch(supervisorVersion: number, actorVersion: number): string | undefined {
  if (supervisorVersion === actorVersion) return undefined;
  return (
    `device protocol version mismatch: the supervisor speaks version ${supervisorVersion}, ` +
    `the device actor version ${actorVersion} (both sides must come from the same build)`
  );
}

/**
 * Start-up data of a device actor. Network: yes (an agent gets the same description of what
 * to load; the decryption key then needs the TLS channel it travels on).
 */
export interface DeviceActorInit {
  readonly protocolVersion: number;
  readonly deviceId: number;
  readonly deviceType: 'cpu' | 'cuda';
  readonly intraOpThreads: number;
  /** One entry per model; each lists its subgraph files (absolute paths). */
  readonly models: readonly {
    readonly key: string;
    readonly files: readonly string[];
    /** A stateful model's state tensors: the actor keeps them per sequence (RunFrame.rows). */
    readonly state?: readonly LoadedStateDeclaration[];
  }[];
  /** Present for encrypted model files. */
  readonly decryption?: { readonly key: Uint8Array; readonly mode: 'AES-GCM' | 'AES-CBC' };
  /**
   * Time warm-up runs of every graph after loading (LoadReply.warmup): the first actor of an
   * auto-planned servable. Per model, the batch to try in a dynamic first dim (1 for a model
   * without a batch dim).
   */
  readonly measureCost?: readonly number[];
}

/** What a worker thread gets as workerData. Network: no (it holds the control port and shared memory). */
export interface DeviceThreadData extends DeviceActorInit {
  /** The actor's end of the control channel: it exposes `DeviceControl` there. */
  readonly control: MessagePort;
  /** The request mailbox's memory (RunFrames, supervisor → actor; see mailbox.ts). */
  readonly requests: SharedArrayBuffer;
  /** The reply mailbox's memory (ReplyFrames, actor → supervisor). */
  readonly replies: SharedArrayBuffer;
  /** The slots' buffers at generation 0. */
  readonly slots: readonly SharedArrayBuffer[];
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

/** [model][subgraph] descriptions of the graphs a device loaded. */
export type DeviceGraphs = readonly (readonly GraphInfo[])[];

// ---------------------------------------------------------------------------------------------
// Control plane (comlink, on DeviceThreadData.control)

/** A timed warm-up run: `batch` is what the dynamic first dim was (1 when there was none). */
export interface WarmupRun {
  readonly ms: number;
  readonly batch: number;
}

/** The answer to `load`. Network: yes. */
export interface LoadReply {
  /** The actor's DEVICE_PROTOCOL_VERSION (the supervisor checks it as well). */
  readonly protocolVersion: number;
  readonly graphs: DeviceGraphs;
  /**
   * With `measureCost`: [model][subgraph] the fastest of a few runs on zeros, or why a graph
   * could not be run (a string input, a model that refuses zeros).
   */
  readonly warmup?: readonly (readonly (WarmupRun | string)[])[];
}

/** The answer to `health`. Network: yes (an agent's liveness probe). */
export interface DeviceActorHealth {
  readonly phase: 'loading' | 'ready' | 'stopping';
  /** Batches in the request mailbox or running (not answered yet). */
  readonly queuedBatches: number;
}

/** The answer to `stats`. Network: yes. */
export interface DeviceActorStats {
  readonly batchesRun: number;
  readonly batchesFailed: number;
  readonly heapUsedBytes: number;
  readonly uptimeMs: number;
  /** Sequences whose state this actor holds (all stateful models). */
  readonly sequences: number;
}

/**
 * The control operations a device actor exposes through comlink. Each is handled between
 * batches, never while ONNX Runtime is running: a JS handler cannot run while `session.run`
 * holds the thread, and `stop` waits for the batches in the mailbox. The supervisor never
 * terminates a thread inside `session.run` (onnxruntime-node then throws a C++ exception during
 * teardown, which aborts the whole process), only a starting one or one that ignored `stop`
 * for the grace period. Network: yes, every call (an agent hosts the same operations).
 */
export interface DeviceControl {
  /** Creates every model's sessions. Rejects when a file cannot load or the versions differ. */
  load(): Promise<LoadReply>;
  health(): DeviceActorHealth;
  stats(): DeviceActorStats;
  /** Resolves once every batch up to run id `lastRunId` has been received and answered. */
  drain(lastRunId: number): Promise<void>;
  /** Releases the sessions once the mailbox is empty, then exits the thread. */
  stop(): Promise<void>;
  /** Dies of an uncaught error right after answering (fault injection for tests and operators). */
  crash(): void;
  /**
   * Frees the state of sequences of a stateful model (an idle timeout, or an end request that
   * never ran). Sent only while none of them has a batch in flight. Returns how many it held.
   */
  dropSequences(model: number, handles: readonly number[]): number;
}

// ---------------------------------------------------------------------------------------------
// Data path (two mailboxes: batch-frames.ts encodes these into their frames)

/**
 * A tensor placed in a slot buffer at `offset`: `length` elements of a numeric dtype, or, for
 * string/bytes, `length` little-endian uint32 byte lengths followed by the elements' bytes.
 */
export interface TensorRef {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly offset: number;
  readonly length: number;
}

/** One batch to run, its inputs in the slot buffer. Network: no (slot offsets). */
export interface RunFrame {
  /** Increasing from 1 per actor; `drain` counts on it. */
  readonly id: number;
  readonly slot: number;
  /** The slot buffer's generation the inputs sit in (a newer one arrives as a SlotBufferMessage). */
  readonly generation: number;
  readonly model: number;
  readonly subgraph: number;
  readonly inputs: readonly TensorRef[];
  /**
   * For a stateful model: one entry per batch row (padding included), saying whose state the
   * row reads and writes. Absent for other models.
   */
  readonly rows?: readonly SequenceRow[];
}

/**
 * A batch row of a stateful model. `handle` names the sequence (unique per sequence, never
 * reused; 0 = a padding row: zero state in, state out dropped). `start`: the state begins at
 * its initial value; `end`: the state is freed after this batch (also when the batch fails).
 */
export interface SequenceRow {
  readonly handle: number;
  readonly start: boolean;
  readonly end: boolean;
}

/**
 * The answer to a RunFrame: its outputs in the slot buffer of `generation`, or the message of
 * the error the model raised (the actor lives on). Network: the error yes, outputs no.
 */
export type ReplyFrame =
  | { readonly id: number; readonly generation: number; readonly outputs: readonly TensorRef[] }
  | { readonly id: number; readonly error: string };

/**
 * A slot's new, bigger buffer, on the worker's own port (shared memory cannot travel in a
 * mailbox frame): the supervisor's when a batch's inputs did not fit, the actor's when its
 * outputs did not. Sent before the frame that names its generation. Network: no.
 */
export interface SlotBufferMessage {
  readonly type: 'slot-buffer';
  readonly slot: number;
  readonly generation: number;
  readonly buffer: SharedArrayBuffer;
}

/** Byte offsets in slot buffers are aligned to 8 so every typed-array view is legal. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}
