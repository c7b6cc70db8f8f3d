/**
 * Main-thread side of one device actor: starts the worker, waits for its models to load,
 * writes batches into slot buffers, and turns the actor's death into an explicit
 * E_ACTOR_DIED rejection of everything it had in flight.
 */
import { Worker } from 'node:worker_threads';
import { type NumericArray, type NumericDType, TYPED_ARRAY } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import { type DeviceActorInit, type FromDevice, type GraphInfo, type TensorRef, align8 } from './protocol.js';

/** One model input of a batch: the instances' data in order (padding included), or strings. */
export type BatchInput =
  | { readonly dtype: NumericDType; readonly dims: readonly number[]; readonly parts: readonly NumericArray[] }
  | { readonly dtype: 'string' | 'bytes'; readonly dims: readonly number[]; readonly strings: readonly Uint8Array[] };

/** A batch output as the actor wrote it: a view on the slot buffer (valid until release) or strings. */
export type BatchOutput =
  | { readonly dtype: NumericDType; readonly dims: readonly number[]; readonly data: NumericArray }
  | { readonly dtype: 'string'; readonly dims: readonly number[]; readonly strings: readonly Uint8Array[] };

export interface BatchResult {
  readonly outputs: readonly BatchOutput[];
  /** Frees the slot; call once the outputs have been copied out. */
  release(): void;
}

interface Slot {
  readonly index: number;
  buffer: SharedArrayBuffer;
  /** The actor has this buffer already (it is sent once per buffer). */
  shared: boolean;
  busy: boolean;
}

interface Pending {
  readonly slot: Slot;
  resolve(result: BatchResult): void;
  reject(err: ServingError): void;
}

export interface DeviceHandleOptions {
  readonly init: DeviceActorInit;
  /** Batches in flight at once (one runs, the others wait in the actor's mailbox). */
  readonly slots: number;
  readonly initialSlotBytes: number;
  readonly resourceLimits?: { maxOldGenerationSizeMb?: number };
  /** Called once when the actor stops for any reason other than `stop()`. */
  readonly onDeath: (handle: DeviceHandle, reason: string) => void;
  /** Called whenever a slot frees up. */
  readonly onSlotFree: () => void;
}

const ACTOR_ENTRY = new URL('./device-actor.js', import.meta.url);
/** How long a stopping actor may take to finish its batches before its thread is terminated. */
export const STOP_GRACE_MS = 10_000;

export class DeviceHandle {
  readonly deviceId: number;
  readonly ready: Promise<readonly (readonly GraphInfo[])[]>;
  private readonly worker: Worker;
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private state: 'starting' | 'ready' | 'dead' = 'starting';
  private stopping = false;
  /** Batches this actor completed (for stats and the restart policy). */
  completed = 0;

  constructor(private readonly options: DeviceHandleOptions) {
    this.deviceId = options.init.deviceId;
    this.slots = Array.from({ length: options.slots }, (_, index) => ({
      index,
      buffer: new SharedArrayBuffer(options.initialSlotBytes),
      shared: false,
      busy: false,
    }));
    this.worker = new Worker(ACTOR_ENTRY, {
      workerData: options.init,
      execArgv: [],
      resourceLimits: options.resourceLimits,
      name: `actorserve-device-${options.init.deviceId}`,
    });
    let settleReady!: { resolve: (g: readonly (readonly GraphInfo[])[]) => void; reject: (e: ServingError) => void };
    this.ready = new Promise((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    this.ready.catch(() => undefined); // observed by the group; avoid unhandled rejections
    let lastError = '';
    this.worker.on('message', (msg: FromDevice) => {
      switch (msg.type) {
        case 'ready':
          this.state = 'ready';
          settleReady.resolve(msg.graphs);
          break;
        case 'load-error':
          settleReady.reject(new ServingError('E_LOAD_FAILED', `device ${this.deviceId}: ${msg.message}`));
          this.stopping = true;
          void this.worker.terminate(); // no session is running: safe
          break;
        case 'result':
          this.settle(msg.id, (p) => {
            if (msg.buffer) {
              p.slot.buffer = msg.buffer;
              p.slot.shared = true;
            }
            p.resolve({ outputs: msg.outputs.map((r) => this.outputOf(r, p.slot.buffer)), release: () => this.release(p.slot) });
          });
          break;
        case 'run-error':
          this.settle(msg.id, (p) => {
            this.release(p.slot);
            p.reject(new ServingError('E_MODEL_FAILED', msg.message));
          });
          break;
      }
    });
    this.worker.on('error', (err) => {
      lastError = err.message;
    });
    this.worker.on('exit', (code) => {
      const wasStarting = this.state === 'starting';
      this.state = 'dead';
      const reason = lastError || (this.stopping ? 'stopped' : `exited with code ${code}`);
      const err = new ServingError('E_ACTOR_DIED', `device actor ${this.deviceId} died while running the batch (${reason})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (wasStarting) {
        settleReady.reject(new ServingError('E_LOAD_FAILED', `device actor ${this.deviceId} died while loading (${reason})`));
      }
      if (!this.stopping) this.options.onDeath(this, reason);
    });
  }

  get isReady(): boolean {
    return this.state === 'ready';
  }

  get outstanding(): number {
    return this.pending.size;
  }

  hasFreeSlot(): boolean {
    return this.state === 'ready' && this.slots.some((s) => !s.busy);
  }

  /** Sends one batch. Requires `hasFreeSlot()`. Rejects with E_ACTOR_DIED if the actor dies first. */
  run(model: number, subgraph: number, inputs: readonly BatchInput[]): Promise<BatchResult> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot || this.state !== 'ready') {
      return Promise.reject(new ServingError('E_INTERNAL', `device actor ${this.deviceId} has no free slot`));
    }
    slot.busy = true;
    let needed = 0;
    for (const input of inputs) {
      if ('parts' in input) for (const p of input.parts) needed += p.byteLength;
      needed = align8(needed);
    }
    if (needed > slot.buffer.byteLength) {
      slot.buffer = new SharedArrayBuffer(Math.max(needed, slot.buffer.byteLength * 2));
      slot.shared = false;
    }
    const bytes = new Uint8Array(slot.buffer);
    let offset = 0;
    const refs: TensorRef[] = inputs.map((input) => {
      if (!('parts' in input)) return { dtype: input.dtype, dims: input.dims, strings: input.strings };
      const start = offset;
      let length = 0;
      for (const p of input.parts) {
        bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
        offset += p.byteLength;
        length += p.length;
      }
      offset = align8(offset);
      return { dtype: input.dtype, dims: input.dims, offset: start, length };
    });
    const id = this.nextId++;
    const promise = new Promise<BatchResult>((resolve, reject) => {
      this.pending.set(id, { slot, resolve, reject });
    });
    this.worker.postMessage(
      slot.shared
        ? { type: 'run', id, slot: slot.index, model, subgraph, inputs: refs }
        : { type: 'run', id, slot: slot.index, buffer: slot.buffer, model, subgraph, inputs: refs },
    );
    slot.shared = true;
    return promise;
  }

  /**
   * Stops the actor once the batches it holds are done (no restart follows). Terminates the
   * thread only if it does not exit within `graceMs` (a hung model).
   */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    if (this.state === 'dead') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.state === 'starting') void this.worker.terminate();
      else this.worker.postMessage({ type: 'stop' });
    });
  }

  /**
   * Makes the actor die of an uncaught error, as a crash would: the restart policy applies and
   * its in-flight batches are retried or failed. For fault tests and operators.
   */
  kill(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.state === 'dead') return resolve();
      this.worker.once('exit', () => resolve());
      this.worker.postMessage({ type: 'crash' });
    });
  }

  private settle(id: number, fn: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.completed++;
    fn(p);
  }

  private release(slot: Slot): void {
    if (!slot.busy) return;
    slot.busy = false;
    if (this.state === 'ready') this.options.onSlotFree();
  }

  private outputOf(ref: TensorRef, buffer: SharedArrayBuffer): BatchOutput {
    if ('strings' in ref) return { dtype: 'string', dims: ref.dims, strings: ref.strings };
    const dtype = ref.dtype as NumericDType;
    return { dtype, dims: ref.dims, data: new TYPED_ARRAY[dtype](buffer, ref.offset, ref.length) };
  }
}

