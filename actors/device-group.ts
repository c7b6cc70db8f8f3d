/**
 * The device copies of one servable version: one device per device id, made by a
 * DeviceFactory (worker-thread actors today, agent ranks later). Starts them, picks the
 * least-busy live device for each batch, and restarts a device that dies, with exponential
 * backoff and a crash-loop breaker.
 */
import type { ServingError } from '../engine/errors.js';
import { debugActors } from '../engine/logger.js';
import type { Device, DeviceFactory } from './device.js';
import type { DeviceGraphs } from './protocol.js';

export interface RestartPolicy {
  /** Wait before the first restart of a device; doubles with each restart that fails. */
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Restarts of one device that fail to come up in a row before the device is given up. */
  readonly maxFailedRestarts: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { initialBackoffMs: 100, maxBackoffMs: 5_000, maxFailedRestarts: 5 };

/** How long to wait before restarting a device whose last `failedRestarts` restarts failed. */
export function restartDelayMs(policy: RestartPolicy, failedRestarts: number): number {
  return Math.min(policy.initialBackoffMs * 2 ** failedRestarts, policy.maxBackoffMs);
}

export interface DeviceGroupOptions<D extends Device> {
  readonly label: string;
  readonly deviceIds: readonly number[];
  readonly spawn: DeviceFactory<D>;
  readonly restartPolicy?: RestartPolicy;
  /** Capacity changed: a slot freed, a device came up, or the group lost its last device. */
  readonly onCapacity: () => void;
  readonly log: (line: string) => void;
}

interface Member<D> {
  readonly deviceId: number;
  device: D | undefined;
  restarts: number;
  failedRestarts: number;
  timer: NodeJS.Timeout | undefined;
  givenUp: boolean;
}

function newMember<D>(deviceId: number): Member<D> {
  return { deviceId, device: undefined, restarts: 0, failedRestarts: 0, timer: undefined, givenUp: false };
}

export class DeviceGroup<D extends Device = Device> {
  private readonly members: Member<D>[];
  private readonly policy: RestartPolicy;
  private stopped = false;
  private rr = 0;
  graphs: DeviceGraphs = [];
  /** Device restarts so far (all devices). */
  restarts = 0;

  constructor(private readonly options: DeviceGroupOptions<D>) {
    this.policy = options.restartPolicy ?? DEFAULT_RESTART_POLICY;
    this.members = options.deviceIds.map((id) => newMember<D>(id));
  }

  /** Starts every device; fails (stopping the others) if any cannot load. */
  async start(): Promise<void> {
    const all = await this.startMembers(this.members);
    this.graphs = all[0] ?? [];
  }

  /**
   * Adds devices for more ids to a started group (the device plan's actors after the first,
   * engine/device-plan.ts) and starts them; fails, stopping the whole group, if any cannot load.
   */
  async grow(deviceIds: readonly number[]): Promise<void> {
    const added = deviceIds.map((id) => newMember<D>(id));
    this.members.push(...added);
    await this.startMembers(added);
  }

  private async startMembers(members: readonly Member<D>[]): Promise<DeviceGraphs[]> {
    const started = members.map((m) => (m.device = this.spawn(m)));
    try {
      return await Promise.all(started.map((d) => d.ready));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** True while at least one device is up or coming back. */
  get available(): boolean {
    return !this.stopped && this.members.some((m) => !m.givenUp);
  }

  get liveCount(): number {
    return this.members.filter((m) => m.device?.state === 'ready').length;
  }

  /** The live device with a free slot and the least outstanding work (ties: round robin). */
  pick(): D | undefined {
    let best: D | undefined;
    const n = this.members.length;
    for (let k = 0; k < n; k++) {
      const d = this.members[(this.rr + k) % n]?.device;
      if (d?.hasFreeSlot() && (!best || d.outstanding < best.outstanding)) best = d;
    }
    if (best) this.rr = (this.rr + 1) % n;
    return best;
  }

  /** Current devices (live or starting), for tests and operators (e.g. killing one to check recovery). */
  devices(): D[] {
    return this.members.flatMap((m) => (m.device ? [m.device] : []));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.members) clearTimeout(m.timer);
    await Promise.all(this.devices().map((d) => d.stop()));
  }

  private spawn(m: Member<D>): D {
    const device: D = this.options.spawn(m.deviceId, {
      slotFreed: this.options.onCapacity,
      died: (reason) => this.onDeath(m, device, reason),
    });
    return device;
  }

  private onDeath(m: Member<D>, device: D, reason: string): void {
    if (m.device !== device || this.stopped) return;
    m.device = undefined;
    // A device that served before died: count from the start. One that never came up: back off.
    if (device.completed > 0) m.failedRestarts = 0;
    this.options.log(`${this.options.label}: device actor ${m.deviceId} died (${reason})`);
    this.scheduleRestart(m);
    this.options.onCapacity();
  }

  private scheduleRestart(m: Member<D>): void {
    if (this.stopped) return;
    if (m.failedRestarts >= this.policy.maxFailedRestarts) {
      m.givenUp = true;
      this.options.log(`${this.options.label}: device actor ${m.deviceId} failed ${m.failedRestarts} restarts in a row; giving it up`);
      this.options.onCapacity();
      return;
    }
    const delay = restartDelayMs(this.policy, m.failedRestarts);
    debugActors('%s: restarting device actor %d in %d ms', this.options.label, m.deviceId, delay);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      if (this.stopped) return;
      const device = this.spawn(m);
      m.device = device;
      device.ready.then(
        () => {
          if (this.stopped || m.device !== device) return;
          m.restarts++;
          this.restarts++;
          this.options.log(`${this.options.label}: device actor ${m.deviceId} restarted`);
          this.options.onCapacity();
        },
        (err: ServingError) => {
          if (m.device !== device) return;
          m.device = undefined;
          m.failedRestarts++;
          this.options.log(`${this.options.label}: restarting device actor ${m.deviceId} failed: ${err.message}`);
          this.scheduleRestart(m);
        },
      );
    }, delay);
  }
}
