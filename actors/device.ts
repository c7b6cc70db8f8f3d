/**
 * What the scheduler and the device group need of one device copy, whatever hosts it: today a
 * worker-thread actor in this process (DeviceHandle), later a rank on an agent over the
 * network. The scheduler and the group's picking and restart policies use only this, so a new
 * kind of device is a new `DeviceFactory` (see actors/README.md).
 */
import type { NumericArray, NumericDType } from '../engine/dtypes.js';
import type { DeviceGraphs, SequenceRow } from './protocol.js';

/** One model input of a batch: the instances' data in order (padding included), or strings. */
export type BatchInput =
  | { readonly dtype: NumericDType; readonly dims: readonly number[]; readonly parts: readonly NumericArray[] }
  | { readonly dtype: 'string' | 'bytes'; readonly dims: readonly number[]; readonly strings: readonly Uint8Array[] };

/** A batch output: a view the device lends (valid until release) or strings. */
export type BatchOutput =
  | { readonly dtype: NumericDType; readonly dims: readonly number[]; readonly data: NumericArray }
  | { readonly dtype: 'string'; readonly dims: readonly number[]; readonly strings: readonly Uint8Array[] };

export interface BatchResult {
  readonly outputs: readonly BatchOutput[];
  /** Gives the batch's slot back; call once the outputs have been copied out. */
  release(): void;
}

/**
 * `starting` until its models are loaded, `ready` while it takes batches, `dead` once it
 * stopped or died (final: the group spawns a new device to replace it).
 */
export type DeviceState = 'starting' | 'ready' | 'dead';

/** What a device tells its group. Neither is called from inside the factory call. */
export interface DeviceEvents {
  /** A slot freed up while the device is ready: the scheduler may dispatch again. */
  readonly slotFreed: () => void;
  /**
   * The device ended other than by `stop()` (a crash, a lost connection), once. Its runs in
   * flight have been rejected with E_ACTOR_DIED before this is called.
   */
  readonly died: (reason: string) => void;
}

export interface Device {
  readonly deviceId: number;
  readonly state: DeviceState;
  /** Settles once: the graphs it loaded, or an E_LOAD_FAILED ServingError. */
  readonly ready: Promise<DeviceGraphs>;
  /** Batches sent and not answered yet (the group sends work to the least outstanding). */
  readonly outstanding: number;
  /** Batches answered so far: a device that served before it died restarts without backoff debt. */
  readonly completed: number;
  /** Ready, with room for one more batch. */
  hasFreeSlot(): boolean;
  /**
   * Runs one batch; requires `hasFreeSlot()`. `rows` (stateful models) say whose state each
   * batch row reads and writes (SequenceRow). Rejects with a ServingError: E_MODEL_FAILED when
   * the model refused the batch, E_ACTOR_DIED when the device died first (the scheduler retries
   * those once elsewhere).
   */
  run(model: number, subgraph: number, inputs: readonly BatchInput[], rows?: readonly SequenceRow[]): Promise<BatchResult>;
  /**
   * Frees the state a stateful model keeps for these sequences (none of them in flight). A
   * device that keeps no state (or is gone) resolves 0.
   */
  dropSequences?(model: number, handles: readonly number[]): Promise<number>;
  /**
   * Finishes the batches it holds, then ends (no `died` event follows). A device that does not
   * end within `graceMs` is ended by force.
   */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns (and starts loading) the device for one id; the group calls it again to restart one. */
export type DeviceFactory<D extends Device = Device> = (deviceId: number, events: DeviceEvents) => D;

/**
 * The devices of one loaded servable version as the runtime holds them: a DeviceGroup of local
 * device actors, or the ranks of a distributed servable behind its coordinator
 * (agent-coordinator.ts). The scheduler picks devices through it.
 */
export interface DevicePool {
  /** [model][subgraph] graphs the devices run (set once `start` resolved). */
  readonly graphs: DeviceGraphs;
  /** False once nothing can serve (queued and new work fails with E_UNAVAILABLE). */
  readonly available: boolean;
  /** Why `available` is false, for the E_UNAVAILABLE message (absent: the generic one). */
  unavailableReason?(): string;
  /** Devices that take work now (readiness and the live-actors gauge). */
  readonly liveCount: number;
  /** Device restarts (or rank re-registrations) so far. */
  readonly restarts: number;
  start(): Promise<void>;
  pick(): Device | undefined;
  devices(): Device[];
  stop(): Promise<void>;
}
