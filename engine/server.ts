/**
 * The server facade: starts servables (loading configs, resolving versions, starting the
 * supervisors) and serves the in-process engine API the transports call.
 */
import { loadServableConfig } from './config-loader.js';
import { InstanceErrors, ServingError } from './errors.js';
import { type InferOptions, type InstanceOutcome, type MethodInfo, ServableRuntime } from '../actors/servable-runtime.js';
import { locateServable, resolveVersion } from './servable-dir.js';
import { ServableStartConfig } from './start-config.js';
import type { Instance } from './tensor.js';
import { ServingMetrics, type Transport } from './serving-metrics.js';

export interface EngineInferOptions extends InferOptions {
  /** 0 or absent: the newest loaded version. */
  versionNumber?: number;
  /** Which transport the request came through (a metrics label); default 'engine'. */
  transport?: Transport;
}

export interface ServingServerOptions {
  /** Collect metrics (default true; off only to measure their cost). */
  metrics?: boolean;
}

/** Default time `drain()` lets in-flight work finish before the rest is failed. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

export interface ServableInfo {
  readonly name: string;
  readonly versions: readonly number[];
  readonly methods: readonly MethodInfo[];
}

export type LogFn = (line: string) => void;

export class ServingServer {
  /** The start-config class, reachable as `server.ServableStartConfig` like MindSpore's module. */
  readonly ServableStartConfig = ServableStartConfig;
  private readonly servables = new Map<string, Map<number, ServableRuntime>>();
  private starting: Promise<unknown> = Promise.resolve();
  private draining = false;
  /** Prometheus metrics of this server (`metrics.render()` is what `/metrics` serves). */
  readonly metrics: ServingMetrics | undefined;
  log: LogFn = (line) => process.stderr.write(`[actorserve] ${line}\n`);

  constructor(options: ServingServerOptions = {}) {
    this.metrics = options.metrics === false ? undefined : new ServingMetrics(() => this.runtimes().map((rt) => rt.figures));
  }

  private runtimes(): ServableRuntime[] {
    return [...this.servables.values()].flatMap((v) => [...v.values()]);
  }

  /**
   * Starts servables. Configs naming the same servable must share its directory; configs that
   * resolve to the same version are merged (their device ids joined). Fails as a whole: a
   * servable that cannot load stops the ones this call started.
   */
  startServables(configs: ServableStartConfig | readonly ServableStartConfig[]): Promise<void> {
    const run = this.starting.then(() => this.doStart(configs));
    this.starting = run.catch(() => undefined);
    return run;
  }

  private async doStart(configs: ServableStartConfig | readonly ServableStartConfig[]): Promise<void> {
    const list = Array.isArray(configs) ? configs : [configs as ServableStartConfig];
    if (list.length === 0 || !list.every((c) => c instanceof ServableStartConfig)) {
      throw new ServingError('E_INVALID_ARGUMENT', 'startServables takes a ServableStartConfig or a list of them');
    }
    const merged = new Map<string, { config: ServableStartConfig; version: number }>();
    const resolved: { config: ServableStartConfig; version: number; loaded: Awaited<ReturnType<typeof loadServableConfig>>; location: Awaited<ReturnType<typeof locateServable>> }[] = [];
    for (const c of list) {
      const location = await locateServable(c.servableDirectory, c.servableName);
      const loaded = await loadServableConfig(location.configPath, c.servableName);
      const version = await resolveVersion(location, c.versionNumber, loaded.models.length > 0);
      const key = `${c.servableName}@${version}`;
      const prior = merged.get(key);
      if (prior) {
        if (prior.config.servableDirectory !== c.servableDirectory) {
          throw new ServingError('E_INVALID_ARGUMENT', `servable '${c.servableName}' is configured from two directories`);
        }
        const ids = [...new Set([...prior.config.deviceIds, ...c.deviceIds])];
        const joined = new ServableStartConfig({ ...prior.config, deviceIds: ids, decKey: prior.config.decKey ?? null, numParallelWorkers: Math.max(prior.config.numParallelWorkers, c.numParallelWorkers) });
        merged.set(key, { config: joined, version });
        const r = resolved.find((x) => `${x.config.servableName}@${x.version}` === key)!;
        r.config = joined;
        continue;
      }
      if (this.servables.get(c.servableName)?.has(version)) {
        throw new ServingError('E_INVALID_ARGUMENT', `servable '${c.servableName}' version ${version} is already started`);
      }
      merged.set(key, { config: c, version });
      resolved.push({ config: c, version, loaded, location });
    }
    const started: ServableRuntime[] = [];
    try {
      for (const r of resolved) {
        const rt = await ServableRuntime.create(r.location, r.version, r.loaded, r.config, this.log, this.metrics?.observer(r.config.servableName));
        started.push(rt);
        this.log(`servable '${rt.name}' version ${rt.version} started on devices [${r.config.deviceIds.join(', ')}]`);
      }
    } catch (err) {
      await Promise.all(started.map((rt) => rt.stop()));
      throw err;
    }
    for (const rt of started) {
      let versions = this.servables.get(rt.name);
      if (!versions) this.servables.set(rt.name, (versions = new Map()));
      versions.set(rt.version, rt);
    }
  }

  /** The runtime that serves (servable, version); version 0 = newest loaded. */
  runtime(servable: string, versionNumber = 0): ServableRuntime {
    const versions = this.servables.get(servable);
    if (!versions || versions.size === 0) {
      const known = [...this.servables.keys()];
      throw new ServingError(
        'E_UNKNOWN_SERVABLE',
        `servable '${servable}' is not loaded${known.length ? ` (loaded: ${known.join(', ')})` : ''}`,
      );
    }
    if (!Number.isSafeInteger(versionNumber) || versionNumber < 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `version must be an integer >= 0, got ${versionNumber}`);
    }
    if (versionNumber === 0) return versions.get(Math.max(...versions.keys()))!;
    const rt = versions.get(versionNumber);
    if (!rt) {
      throw new ServingError(
        'E_UNKNOWN_VERSION',
        `servable '${servable}' has no loaded version ${versionNumber} (loaded: ${[...versions.keys()].join(', ')})`,
      );
    }
    return rt;
  }

  /**
   * Runs a method on instances; resolves with each instance's outcome (outputs or error).
   * Whole-request problems (unknown servable/method/version, zero instances, overload,
   * deadline) reject.
   */
  inferEach(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions = {}): Promise<InstanceOutcome[]> {
    let rt: ServableRuntime;
    try {
      if (this.draining) throw new ServingError('E_STOPPED', 'the server is draining and takes no new requests');
      rt = this.runtime(servable, options.versionNumber ?? 0);
    } catch (err) {
      // Unknown names are not used as label values: clients could grow the label set at will.
      this.metrics?.request('', '', '', options.transport ?? 'engine', 0, (err as ServingError).code ?? 'E_INTERNAL');
      return Promise.reject(err);
    }
    const work = rt.inferEach(method, instances, options);
    const metrics = this.metrics;
    if (!metrics) return work;
    const started = performance.now();
    const known = rt.hasMethod(method) ? method : '';
    const record = (code: string | undefined): void =>
      metrics.request(rt.name, known, rt.version, options.transport ?? 'engine', (performance.now() - started) / 1000, code);
    return work.then(
      (outcomes) => {
        const failed = outcomes.find((o) => o instanceof ServingError) as ServingError | undefined;
        record(failed?.code);
        return outcomes;
      },
      (err: unknown) => {
        record((err as ServingError).code ?? 'E_INTERNAL');
        throw err;
      },
    );
  }

  /** Like `inferEach`, but rejects with InstanceErrors when any instance failed. */
  async infer(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions = {}): Promise<Instance[]> {
    const outcomes = await this.inferEach(servable, method, instances, options);
    if (outcomes.some((o) => o instanceof ServingError)) {
      throw new InstanceErrors(outcomes.map((o) => (o instanceof ServingError ? o : undefined)));
    }
    return outcomes as Instance[];
  }

  /** Loaded servables, their versions and methods. */
  describe(): ServableInfo[] {
    return [...this.servables.entries()].map(([name, versions]) => ({
      name,
      versions: [...versions.keys()].sort((a, b) => a - b),
      methods: versions.get(Math.max(...versions.keys()))!.describe(),
    }));
  }

  /**
   * Readiness for probes: ready when at least one servable is loaded and every loaded
   * servable version has a live device actor (or needs none).
   */
  health(): { ready: boolean; servables: { name: string; version: number; liveActors: number; ready: boolean }[] } {
    const servables = [...this.servables.values()].flatMap((versions) =>
      [...versions.values()].map((rt) => ({ name: rt.name, version: rt.version, liveActors: rt.stats.liveActors, ready: rt.ready })),
    );
    return { ready: servables.length > 0 && servables.every((s) => s.ready), servables };
  }

  /** Requests admitted and not yet answered, over every servable. */
  get inflight(): number {
    return this.runtimes().reduce((n, rt) => n + rt.figures.inflight, 0);
  }

  /**
   * Graceful drain: refuses new requests (E_STOPPED), lets admitted ones finish for up to
   * `timeoutMs`, then stops — what is still running is answered with E_STOPPED. Resolves with
   * the number of requests that had to be cut off.
   */
  async drain(timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS): Promise<number> {
    this.draining = true;
    const deadline = performance.now() + timeoutMs;
    while (this.inflight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const cut = this.inflight;
    await this.stop();
    return cut;
  }

  /** Stops every servable: queued work is answered with E_STOPPED, device actors end. */
  async stop(): Promise<void> {
    const all = this.runtimes();
    this.servables.clear();
    await Promise.all(all.map((rt) => rt.stop()));
  }
}

/** A new, independent server (tests, or several engines in one process). */
export function createServer(): ServingServer {
  return new ServingServer();
}
