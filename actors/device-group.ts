/**
 * The device copies of one servable version: one device actor per device id. Starts them,
 * picks the least-busy live actor for each batch, and restarts an actor that dies, with
 * exponential backoff and a crash-loop breaker.
 */
import { ServingError } from '../engine/errors.js';
import { DeviceHandle } from './device-handle.js';
import { debugActors } from '../engine/logger.js';
import type { DeviceActorInit, GraphInfo } from './protocol.js';

export interface DeviceGroupOptions {
  readonly label: string;
  readonly deviceIds: readonly number[];
  readonly init: Omit<DeviceActorInit, 'deviceId'>;
  readonly slotsPerActor: number;
  readonly initialSlotBytes: number;
  readonly maxOldGenerationSizeMb?: number;
  /** Capacity changed: a slot freed, an actor came up, or the group lost its last actor. */
  readonly onCapacity: () => void;
  readonly log: (line: string) => void;
}

export const RESTART_BACKOFF_MS = { initial: 100, max: 5_000 } as const;
/** Restarts of one device that fail to come up in a row before the device is given up. */
export const MAX_FAILED_RESTARTS = 5;

interface Member {
  readonly deviceId: number;
  handle: DeviceHandle | undefined;
  restarts: number;
  failedRestarts: number;
  timer: NodeJS.Timeout | undefined;
  givenUp: boolean;
}

export class DeviceGroup {
  private readonly members: Member[];
  private stopped = false;
  private rr = 0;
  graphs: readonly (readonly GraphInfo[])[] = [];
  /** Device actor restarts so far (all devices). */
  restarts = 0;

  constructor(private readonly options: DeviceGroupOptions) {
    this.members = options.deviceIds.map((deviceId) => ({
      deviceId,
      handle: undefined,
      restarts: 0,
      failedRestarts: 0,
      timer: undefined,
      givenUp: false,
    }));
  }

  /** Starts every actor; fails (stopping the others) if any cannot load. */
  async start(): Promise<void> {
    for (const m of this.members) m.handle = this.spawn(m);
    try {
      const all = await Promise.all(this.members.map((m) => m.handle!.ready));
      this.graphs = all[0]!;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** True while at least one actor is up or coming back. */
  get available(): boolean {
    return !this.stopped && this.members.some((m) => !m.givenUp);
  }

  get liveCount(): number {
    return this.members.filter((m) => m.handle?.isReady).length;
  }

  /** The live actor with a free slot and the least outstanding work (ties: round robin). */
  pick(): DeviceHandle | undefined {
    let best: DeviceHandle | undefined;
    const n = this.members.length;
    for (let k = 0; k < n; k++) {
      const h = this.members[(this.rr + k) % n]!.handle;
      if (h?.hasFreeSlot() && (!best || h.outstanding < best.outstanding)) best = h;
    }
    if (best) this.rr = (this.rr + 1) % n;
    return best;
  }

  /** Live actors, for tests and operators (e.g. killing one to check recovery). */
  handles(): DeviceHandle[] {
    return this.members.flatMap((m) => (m.handle ? [m.handle] : []));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.members) clearTimeout(m.timer);
    await Promise.all(this.members.map((m) => m.handle?.stop()));
  }

  private spawn(m: Member): DeviceHandle {
    return new DeviceHandle({
      init: { ...this.options.init, deviceId: m.deviceId },
      slots: this.options.slotsPerActor,
      initialSlotBytes: this.options.initialSlotBytes,
      resourceLimits:
        this.options.maxOldGenerationSizeMb !== undefined ? { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb } : undefined,
      onDeath: (handle, reason) => this.onDeath(m, handle, reason),
      onSlotFree: this.options.onCapacity,
    });
  }

  private onDeath(m: Member, handle: DeviceHandle, reason: string): void {
    if (m.handle !== handle || this.stopped) return;
    m.handle = undefined;
    // An actor that served before died: count from the start. One that never came up: back off.
    if (handle.completed > 0) m.failedRestarts = 0;
    this.options.log(`${this.options.label}: device actor ${m.deviceId} died (${reason})`);
    this.scheduleRestart(m);
    this.options.onCapacity();
  }

  private scheduleRestart(m: Member): void {
    if (this.stopped) return;
    if (m.failedRestarts >= MAX_FAILED_RESTARTS) {
      m.givenUp = true;
      this.options.log(`${this.options.label}: device actor ${m.deviceId} failed ${m.failedRestarts} restarts in a row; giving it up`);
      this.options.onCapacity();
      return;
    }
    const delay = Math.min(RESTART_BACKOFF_MS.initial * 2 ** m.failedRestarts, RESTART_BACKOFF_MS.max);
    debugActors('%s: restarting device actor %d in %d ms', this.options.label, m.deviceId, delay);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      if (this.stopped) return;
      const handle = this.spawn(m);
      m.handle = handle;
      handle.ready.then(
        () => {
          if (this.stopped || m.handle !== handle) return;
          m.restarts++;
          this.restarts++;
          this.options.log(`${this.options.label}: device actor ${m.deviceId} restarted`);
          this.options.onCapacity();
        },
        (err: ServingError) => {
          if (m.handle !== handle) return;
          m.handle = undefined;
          m.failedRestarts++;
          this.options.log(`${this.options.label}: restarting device actor ${m.deviceId} failed: ${err.message}`);
          this.scheduleRestart(m);
        },
      );
    }, delay);
  }
}
