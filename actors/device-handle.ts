/**
 * The local device kind: one device actor, a worker thread in this process. Starts the worker,
 * loads its models over the control plane (comlink on a dedicated port), writes batches into
 * slot buffers with their descriptors as frames in the request mailbox and reads results back
 * from the reply mailbox (the data path, shared memory only: mailbox.ts), and turns the
 * actor's death into an explicit E_ACTOR_DIED rejection of everything it had in flight.
 *
 * Replies are noticed through `Atomics.waitAsync` on the reply mailbox, armed while batches
 * are outstanding; the event loop is never blocked.
 */
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { type NumericDType, TYPED_ARRAY, isNumericDType } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import type { BatchInput, BatchOutput, BatchResult, Device, DeviceEvents, DeviceFactory, DeviceState } from './device.js';
import { Mailbox } from './mailbox.js';
import { packStrings, packedStringBytes, readReplyFrame, runFrameBytes, unpackStrings, writeRunFrame } from './batch-frames.js';
import {
  DEVICE_PROTOCOL_VERSION,
  type DeviceActorHealth,
  type DeviceActorInit,
  type DeviceActorStats,
  type DeviceControl,
  type DeviceGraphs,
  type DeviceThreadData,
  type ReplyFrame,
  type RunFrame,
  type SequenceRow,
  type SlotBufferMessage,
  type TensorRef,
  align8,
  protocolMismatch,
} from './protocol.js';

interface Slot {
  readonly index: number;
  buffer: SharedArrayBuffer;
  /** Bumped with each new buffer, by whichever side made it. */
  generation: number;
  busy: boolean;
  /** A reply naming a generation whose buffer has not arrived on the port yet. */
  early?: ReplyFrame;
}

/** Bytes of each mailbox's frame area: far more than `slots` frames of any real model. */
const MAILBOX_BYTES = 64 * 1024;

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
  private readonly requests = Mailbox.create(MAILBOX_BYTES);
  private readonly replies = Mailbox.create(MAILBOX_BYTES);
  /** Frames waiting for room in the request mailbox (it is sized so this stays empty). */
  private readonly backlog: RunFrame[] = [];
  private backlogWaiting = false;
  private listening = false;
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
      generation: 0,
      busy: false,
    }));
    const channel = new MessageChannel();
    this.controlPort = channel.port1;
    this.control = Comlink.wrap<DeviceControl>(nodeEndpoint(channel.port1));
    this.worker = new Worker(ACTOR_ENTRY, {
      workerData: {
        ...options.init,
        control: channel.port2,
        requests: this.requests.buffer,
        replies: this.replies.buffer,
        slots: this.slots.map((s) => s.buffer),
      } satisfies DeviceThreadData,
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
    this.worker.on('message', (msg: SlotBufferMessage) => {
      const slot = this.slots[msg.slot];
      if (!slot || msg.generation <= slot.generation) return;
      slot.buffer = msg.buffer;
      slot.generation = msg.generation;
      const early = slot.early;
      slot.early = undefined;
      if (early) this.answer(early);
    });
    this.worker.on('error', (err) => {
      lastError = err.message;
    });
    this.worker.on('exit', (code) => {
      const wasStarting = this.current === 'starting';
      this.current = 'dead';
      this.controlPort.close();
      this.takeReplies(); // what the actor answered before it ended
      this.replies.wake(); // ends the pending waitAsync
      this.backlog.length = 0;
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
  run(model: number, subgraph: number, inputs: readonly BatchInput[], rows?: readonly SequenceRow[]): Promise<BatchResult> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot || this.current !== 'ready') {
      return Promise.reject(new ServingError('E_INTERNAL', `device actor ${this.deviceId} has no free slot`));
    }
    slot.busy = true;
    let needed = 0;
    for (const input of inputs) {
      if ('parts' in input) for (const p of input.parts) needed += p.byteLength;
      else needed += packedStringBytes(input.strings);
      needed = align8(needed);
    }
    if (needed > slot.buffer.byteLength) {
      slot.buffer = new SharedArrayBuffer(Math.max(needed, slot.buffer.byteLength * 2));
      slot.generation++;
      this.worker.postMessage({ type: 'slot-buffer', slot: slot.index, generation: slot.generation, buffer: slot.buffer } satisfies SlotBufferMessage);
    }
    const bytes = new Uint8Array(slot.buffer);
    let offset = 0;
    const refs: TensorRef[] = inputs.map((input) => {
      const start = offset;
      if (!('parts' in input)) {
        offset = align8(offset + packStrings(slot.buffer, offset, input.strings));
        return { dtype: input.dtype, dims: input.dims, offset: start, length: input.strings.length };
      }
      let length = 0;
      for (const p of input.parts) {
        bytes.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
        offset += p.byteLength;
        length += p.length;
      }
      offset = align8(offset);
      return { dtype: input.dtype, dims: input.dims, offset: start, length };
    });
    const frame: RunFrame = { id: this.nextId++, slot: slot.index, generation: slot.generation, model, subgraph, inputs: refs, ...(rows ? { rows } : {}) };
    if (runFrameBytes(frame) > this.requests.maxFrameBytes) {
      slot.busy = false;
      return Promise.reject(
        new ServingError('E_MODEL_FAILED', `the batch's description (${runFrameBytes(frame)} bytes) exceeds the device mailbox's frame limit of ${this.requests.maxFrameBytes} bytes`),
      );
    }
    const promise = new Promise<BatchResult>((resolve, reject) => {
      this.pending.set(frame.id, { slot, resolve, reject });
    });
    if (this.backlog.length > 0 || !this.requests.post(runFrameBytes(frame), (view, at) => writeRunFrame(frame, view, at))) {
      this.backlog.push(frame);
      this.flushBacklog();
    }
    this.listen();
    return promise;
  }

  /** Posts backlogged frames as the actor makes room, in order. */
  private flushBacklog(): void {
    while (this.backlog.length > 0) {
      const frame = this.backlog[0]!;
      if (!this.requests.post(runFrameBytes(frame), (view, at) => writeRunFrame(frame, view, at))) break;
      this.backlog.shift();
    }
    if (this.backlog.length === 0 || this.backlogWaiting || this.current === 'dead') return;
    this.backlogWaiting = true;
    void this.requests.whenRoom(runFrameBytes(this.backlog[0]!)).then(() => {
      this.backlogWaiting = false;
      this.flushBacklog();
    });
  }

  /** Keeps one `waitAsync` on the reply mailbox armed while batches are outstanding. */
  private listen(): void {
    if (this.listening || this.pending.size === 0 || this.current === 'dead') return;
    this.listening = true;
    void this.replies.whenPosted().then(() => {
      this.listening = false;
      this.takeReplies();
      this.listen();
    });
  }

  private takeReplies(): void {
    for (let reply = this.replies.take(readReplyFrame); reply; reply = this.replies.take(readReplyFrame)) this.answer(reply);
  }

  private answer(reply: ReplyFrame): void {
    if ('error' in reply) {
      this.settle(reply.id, (p) => {
        this.release(p.slot);
        p.reject(new ServingError('E_MODEL_FAILED', reply.error));
      });
      return;
    }
    const slot = this.pending.get(reply.id)?.slot;
    if (slot && reply.generation > slot.generation) {
      slot.early = reply; // its buffer is still on the port: answered when it arrives
      return;
    }
    this.settle(reply.id, (p) => {
      p.resolve({ outputs: reply.outputs.map((r) => this.outputOf(r, p.slot.buffer)), release: () => this.release(p.slot) });
    });
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
      // The control port is not ordered with the mailbox: drain names the last batch sent, so
      // the actor finishes every batch posted before this call, then stops. The exit
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

  /** Frees sequences' state in the actor (a control round trip); 0 once the actor is gone. */
  dropSequences(model: number, handles: readonly number[]): Promise<number> {
    if (this.current !== 'ready') return Promise.resolve(0);
    return this.call((c) => c.dropSequences(model, handles)).catch(() => 0);
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
      this.requests.wake(); // the call is on the port now: an actor asleep in Atomics.wait reads it
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
    if (!isNumericDType(ref.dtype)) return { dtype: 'string', dims: ref.dims, strings: unpackStrings(buffer, ref.offset, ref.length) };
    const dtype: NumericDType = ref.dtype;
    return { dtype, dims: ref.dims, data: new TYPED_ARRAY[dtype](buffer, ref.offset, ref.length) };
  }
}

