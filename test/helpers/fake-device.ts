/**
 * An in-process fake of the Device interface (actors/device.ts), for fast scheduler and
 * device-group tests without ONNX Runtime or threads. It is also the proof that a second
 * device kind plugs into DeviceGroup through a factory without touching the scheduler.
 * Test-only: the product spawns DeviceHandle (worker-thread actors).
 *
 * By default it "runs" the add model: one float32 output, the element-wise sum of its numeric
 * inputs, answered on the next macrotask. Tests can hold runs, fail loads, and kill it.
 */
import type { BatchInput, BatchOutput, BatchResult, Device, DeviceEvents, DeviceFactory, DeviceState } from '../../dist/actors/device.js';
import type { DeviceGraphs, GraphInfo } from '../../dist/actors/protocol.js';
import { ServingError } from '../../dist/engine/errors.js';

/** A model graph taking x1, x2 and giving y, float32 with per-instance dims [2, 2]. */
export function addGraph(batchDim: number | string = 'N'): GraphInfo {
  const dims = [batchDim, 2, 2];
  return {
    inputs: [
      { name: 'x1', dtype: 'float32', dims },
      { name: 'x2', dtype: 'float32', dims },
    ],
    outputs: [{ name: 'y', dtype: 'float32', dims }],
  };
}

export interface FakeDeviceOptions {
  readonly slots?: number;
  readonly graphs?: DeviceGraphs;
  /** Loading fails with this message (E_LOAD_FAILED). */
  readonly failLoad?: string;
  /** Runs wait until `answerHeld()` (or the device dies). */
  readonly hold?: boolean;
  /** A run fails with E_MODEL_FAILED and this message. */
  readonly failRuns?: string;
}

/** What a fake device was sent: one entry per batch. */
export interface SentBatch {
  /** performance.now() when the scheduler sent it. */
  readonly at: number;
  readonly model: number;
  readonly subgraph: number;
  readonly inputs: readonly BatchInput[];
}

interface Running {
  readonly batch: SentBatch;
  resolve(result: BatchResult): void;
  reject(err: ServingError): void;
}

export class FakeDevice implements Device {
  readonly ready: Promise<DeviceGraphs>;
  readonly sent: SentBatch[] = [];
  completed = 0;
  private current: DeviceState = 'starting';
  private readonly running = new Set<Running>();
  private readonly held: Running[] = [];
  private usedSlots = 0;

  constructor(
    readonly deviceId: number,
    private readonly events: DeviceEvents,
    private readonly options: FakeDeviceOptions = {},
  ) {
    this.ready = new Promise<DeviceGraphs>((resolve, reject) => {
      setImmediate(() => {
        if (this.current === 'dead') return reject(new ServingError('E_LOAD_FAILED', `device ${deviceId}: stopped while loading`));
        if (options.failLoad) {
          this.current = 'dead';
          return reject(new ServingError('E_LOAD_FAILED', `device ${deviceId}: ${options.failLoad}`));
        }
        this.current = 'ready';
        resolve(options.graphs ?? [[addGraph()]]);
      });
    });
    this.ready.catch(() => undefined);
  }

  get state(): DeviceState {
    return this.current;
  }

  get outstanding(): number {
    return this.running.size;
  }

  hasFreeSlot(): boolean {
    return this.current === 'ready' && this.usedSlots < (this.options.slots ?? 2);
  }

  run(model: number, subgraph: number, inputs: readonly BatchInput[]): Promise<BatchResult> {
    if (!this.hasFreeSlot()) return Promise.reject(new ServingError('E_INTERNAL', `fake device ${this.deviceId} has no free slot`));
    this.usedSlots++;
    const batch = { at: performance.now(), model, subgraph, inputs };
    this.sent.push(batch);
    return new Promise<BatchResult>((resolve, reject) => {
      const r: Running = { batch, resolve, reject };
      this.running.add(r);
      if (this.options.hold) this.held.push(r);
      else setImmediate(() => this.answer(r));
    });
  }

  /** Answers every held run. */
  answerHeld(): void {
    for (const r of this.held.splice(0)) this.answer(r);
  }

  /** Dies as a crash would: runs in flight fail with E_ACTOR_DIED, then the group hears of it. */
  die(reason = 'killed by the test'): void {
    if (this.current === 'dead') return;
    this.current = 'dead';
    const err = new ServingError('E_ACTOR_DIED', `device actor ${this.deviceId} died while running the batch (${reason})`);
    for (const r of this.running) r.reject(err);
    this.running.clear();
    this.held.length = 0;
    this.events.died(reason);
  }

  async stop(): Promise<void> {
    while (this.running.size > 0 && !this.options.hold) await new Promise((r) => setImmediate(r));
    this.current = 'dead';
  }

  private answer(r: Running): void {
    if (!this.running.delete(r)) return;
    this.completed++;
    if (this.options.failRuns) {
      this.freeSlot();
      return r.reject(new ServingError('E_MODEL_FAILED', this.options.failRuns));
    }
    r.resolve({ outputs: [sumOf(r.batch.inputs)], release: () => this.freeSlot() });
  }

  private freeSlot(): void {
    this.usedSlots--;
    if (this.current === 'ready') this.events.slotFreed();
  }
}

/** The element-wise sum of the numeric inputs, with the first input's dims. */
function sumOf(inputs: readonly BatchInput[]): BatchOutput {
  const first = inputs[0];
  if (!first || !('parts' in first)) throw new Error('the fake add takes numeric inputs');
  const total = first.parts.reduce((n, p) => n + p.length, 0);
  const y = new Float32Array(total);
  for (const input of inputs) {
    if (!('parts' in input)) continue;
    let offset = 0;
    for (const part of input.parts) {
      for (let i = 0; i < part.length; i++, offset++) y[offset] = (y[offset] ?? 0) + Number(part[i]);
    }
  }
  return { dtype: 'float32', dims: first.dims, data: y };
}

/**
 * A factory of fake devices and the list of every device it made (restarts included);
 * `options` may differ per device id and per spawn (0 for the first of that id).
 */
export function fakeDevices(options: FakeDeviceOptions | ((deviceId: number, spawn: number) => FakeDeviceOptions) = {}): {
  readonly factory: DeviceFactory<FakeDevice>;
  readonly spawned: FakeDevice[];
  /** Wall-clock times (performance.now()) of each spawn, in order. */
  readonly spawnedAt: number[];
} {
  const spawned: FakeDevice[] = [];
  const spawnedAt: number[] = [];
  const factory: DeviceFactory<FakeDevice> = (deviceId, events) => {
    const n = spawned.filter((d) => d.deviceId === deviceId).length;
    const device = new FakeDevice(deviceId, events, typeof options === 'function' ? options(deviceId, n) : options);
    spawned.push(device);
    spawnedAt.push(performance.now());
    return device;
  };
  return { factory, spawned, spawnedAt };
}
