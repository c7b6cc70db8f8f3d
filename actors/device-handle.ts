/**
 * The local device kind: one device actor, a worker thread in this process. Starts the worker,
 * loads its models over the control plane (comlink on a dedicated port), writes batches into
 * slot buffers and reads results back on the worker's own port (the data path), and turns the
 * actor's death into an explicit E_ACTOR_DIED rejection of everything it had in flight.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { type NumericDType, TYPED_ARRAY } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import type { BatchInput, BatchOutput, BatchResult, Device, DeviceEvents, DeviceFactory, DeviceState } from './device.js';
import {
  DEVICE_PROTOCOL_VERSION,
  type DeviceActorHealth,
  type DeviceActorInit,
  type DeviceActorStats,
  type DeviceControl,
  type DeviceGraphs,
  type DeviceThreadData,
  type FromDevice,
  type RunMessage,
  type TensorRef,
  align8,
  protocolMismatch,
} from './protocol.js';

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

/** What every device actor of a group shares. */
export interface LocalDeviceOptions {
  readonly init: Omit<DeviceActorInit, 'deviceId' | 'protocolVersion'>;
  /** Batches in flight at once (one runs, the others wait in the actor's mailbox). */
  readonly slots: number;
  readonly initialSlotBytes: number;
  readonly resourceLimits?: { maxOldGenerationSizeMb?: number };
}

export interface DeviceHandleOptions extends Omit<LocalDeviceOptions, 'init'> {
  readonly init: DeviceActorInit;
  readonly events: DeviceEvents;
}

/** The factory a DeviceGroup spawns worker-thread device actors with. */
export function localDeviceFactory(options: LocalDeviceOptions): DeviceFactory<DeviceHandle> {
  return (deviceId, events) =>
    new DeviceHandle({ ...options, init: { ...options.init, deviceId, protocolVersion: DEVICE_PROTOCOL_VERSION }, events });
}

const ACTOR_ENTRY = new URL('./device-actor.js', import.meta.url);
/** How long a stopping actor may take to finish its batches before its thread is terminated. */
export const STOP_GRACE_MS = 10_000;

export class DeviceHandle implements Device {
  readonly deviceId: number;
  readonly ready: Promise<DeviceGraphs>;
  private readonly worker: Worker;
  private readonly controlPort: MessagePort;
  private readonly control: Comlink.Remote<DeviceControl>;
  /** Rejecters of control calls awaiting an answer: the actor's exit answers them. */
  private readonly controlCalls = new Set<(err: ServingError) => void>();
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private current: DeviceState = 'starting';
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
    const channel = new MessageChannel();
    this.controlPort = channel.port1;
    this.control = Comlink.wrap<DeviceControl>(nodeEndpoint(channel.port1));
    this.worker = new Worker(ACTOR_ENTRY, {
      workerData: { ...options.init, control: channel.port2 } satisfies DeviceThreadData,
      transferList: [channel.port2],
      execArgv: [],
      resourceLimits: options.resourceLimits,
      name: `actorserve-device-${options.init.deviceId}`,
    });
    let settleReady!: { resolve: (g: DeviceGraphs) => void; reject: (e: ServingError) => void };
    this.ready = new Promise((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    this.ready.catch(() => undefined); // observed by the group; avoid unhandled rejections
    const failLoad = (message: string): void => {
      settleReady.reject(new ServingError('E_LOAD_FAILED', `device ${this.deviceId}: ${message}`));
      this.stopping = true;
      void this.worker.terminate(); // no session is running: safe
    };
    this.call((c) => c.load()).then(
      (reply) => {
        const mismatch = protocolMismatch(DEVICE_PROTOCOL_VERSION, reply.protocolVersion);
        if (mismatch) return failLoad(mismatch);
        this.current = 'ready';
        settleReady.resolve(reply.graphs);
      },
      (err: Error) => {
        if (this.current !== 'dead') failLoad(err.message); // a death rejects `ready` on exit
      },
    );
    let lastError = '';
    this.worker.on('message', (msg: FromDevice) => {
      switch (msg.type) {
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
      const wasStarting = this.current === 'starting';
      this.current = 'dead';
      this.controlPort.close();
      const reason = lastError || (this.stopping ? 'stopped' : `exited with code ${code}`);
      const err = new ServingError('E_ACTOR_DIED', `device actor ${this.deviceId} died while running the batch (${reason})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      const gone = new ServingError('E_ACTOR_DIED', `device actor ${this.deviceId} died (${reason})`);
      for (const reject of this.controlCalls) reject(gone);
      this.controlCalls.clear();
      if (wasStarting) {
        settleReady.reject(new ServingError('E_LOAD_FAILED', `device actor ${this.deviceId} died while loading (${reason})`));
      }
      if (!this.stopping) this.options.events.died(reason);
    });
  }

  get state(): DeviceState {
    return this.current;
  }

  get outstanding(): number {
    return this.pending.size;
  }

  hasFreeSlot(): boolean {
    return this.current === 'ready' && this.slots.some((s) => !s.busy);
  }

  /** Sends one batch. Requires `hasFreeSlot()`. Rejects with E_ACTOR_DIED if the actor dies first. */
  run(model: number, subgraph: number, inputs: readonly BatchInput[]): Promise<BatchResult> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot || this.current !== 'ready') {
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
        ? ({ type: 'run', id, slot: slot.index, model, subgraph, inputs: refs } satisfies RunMessage)
        : ({ type: 'run', id, slot: slot.index, buffer: slot.buffer, model, subgraph, inputs: refs } satisfies RunMessage),
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
    if (this.current === 'dead') return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.current === 'starting') {
        void this.worker.terminate();
        return;
      }
      // The control port is not ordered with the data port: drain names the last batch sent,
      // so the actor finishes every batch posted before this call, then stops. The exit
      // answers both calls (the actor does not reply to `stop`).
      const lastRunId = this.nextId - 1;
      this.call((c) => c.drain(lastRunId))
        .then(() => this.call((c) => c.stop()))
        .catch(() => undefined);
    });
  }

  /** Asks the actor how it is (a control round trip); rejects with E_ACTOR_DIED once it is gone. */
  health(): Promise<DeviceActorHealth> {
    return this.call((c) => c.health());
  }

  /** The actor's own counters (a control round trip). */
  stats(): Promise<DeviceActorStats> {
    return this.call((c) => c.stats());
  }

  /**
   * Makes the actor die of an uncaught error, as a crash would: the restart policy applies and
   * its in-flight batches are retried or failed. For fault tests and operators.
   */
  kill(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.current === 'dead') return resolve();
      this.worker.once('exit', () => resolve());
      this.call((c) => c.crash()).catch(() => undefined);
    });
  }

  /** One control call, answered with E_ACTOR_DIED if the actor exits first (comlink would wait forever). */
  private call<T>(op: (control: Comlink.Remote<DeviceControl>) => Promise<T>): Promise<T> {
    if (this.current === 'dead') return Promise.reject(new ServingError('E_ACTOR_DIED', `device actor ${this.deviceId} is not running`));
    return new Promise<T>((resolve, reject) => {
      this.controlCalls.add(reject);
      op(this.control)
        .then(resolve, reject)
        .finally(() => this.controlCalls.delete(reject));
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
    if (this.current === 'ready') this.options.events.slotFreed();
  }

  private outputOf(ref: TensorRef, buffer: SharedArrayBuffer): BatchOutput {
    if ('strings' in ref) return { dtype: 'string', dims: ref.dims, strings: ref.strings };
    const dtype = ref.dtype as NumericDType;
    return { dtype, dims: ref.dims, data: new TYPED_ARRAY[dtype](buffer, ref.offset, ref.length) };
  }
}

