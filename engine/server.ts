/**
 * The server facade: starts servables (loading configs, resolving versions, starting the
 * supervisors) and serves the in-process engine API the transports call.
 */
import { loadServableConfig } from './config-loader.js';
import { InstanceErrors, ServingError } from './errors.js';
import { type InferOptions, type InstanceOutcome, type MethodInfo, ServableRuntime } from '../actors/servable-runtime.js';
import { listVersions, locateServable, resolveVersion, type ServableLocation } from './servable-dir.js';
import type { LoadedConfig } from './config-loader.js';
import { ServableStartConfig } from './start-config.js';
import type { Instance } from './tensor.js';
import { ServingMetrics, type Transport } from './serving-metrics.js';
import type { RestServer, RestServerOptions } from '../transports/rest/server.js';
import type { GrpcServer, GrpcServerOptions } from '../transports/grpc/server.js';

export interface EngineInferOptions extends InferOptions {
  /** 0 or absent: the newest loaded version. */
  versionNumber?: number;
  /** Which transport the request came through (a metrics label); default 'engine'. */
  transport?: Transport;
  /** Correlates logs and replies; transports generate one when the client sends none. */
  requestId?: string;
}

/** One finished request, as the access log sees it. */
export interface RequestLogEntry {
  readonly requestId: string | undefined;
  readonly servable: string;
  readonly method: string;
  readonly version: number | undefined;
  readonly transport: Transport;
  readonly instances: number;
  /** undefined on success; else the first error code. */
  readonly code: string | undefined;
  readonly ms: number;
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

interface StartPlan {
  config: ServableStartConfig;
  readonly version: number;
  readonly loaded: LoadedConfig;
  readonly location: ServableLocation;
}

export class ServingServer {
  /** The start-config class, reachable as `server.ServableStartConfig` like MindSpore's module. */
  readonly ServableStartConfig = ServableStartConfig;
  private readonly servables = new Map<string, Map<number, ServableRuntime>>();
  private starting: Promise<unknown> = Promise.resolve();
  private draining = false;
  /** Servables started with version 0, whose newer versions `reload()` picks up. */
  private readonly followNewest = new Map<string, ServableStartConfig>();
  /** Prometheus metrics of this server (`metrics.render()` is what `/metrics` serves). */
  readonly metrics: ServingMetrics | undefined;
  log: LogFn = (line) => process.stderr.write(`[actorserve] ${line}\n`);
  /** Transports started through this server; stopped with it. */
  private readonly listeners: { close(): Promise<void> }[] = [];
  /** Called once per finished request when set (the access log). */
  requestLog: ((entry: RequestLogEntry) => void) | undefined;

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
    const plans = new Map<string, StartPlan>(); // key: name@version
    for (const c of list) {
      const plan = await this.planStart(c);
      const key = `${c.servableName}@${plan.version}`;
      const prior = plans.get(key);
      if (!prior) {
        plans.set(key, plan);
        continue;
      }
      if (prior.config.servableDirectory !== c.servableDirectory) {
        throw new ServingError('E_INVALID_ARGUMENT', `servable '${c.servableName}' is configured from two directories`);
      }
      prior.config = new ServableStartConfig({
        ...prior.config,
        deviceIds: [...new Set([...prior.config.deviceIds, ...c.deviceIds])],
        numParallelWorkers: Math.max(prior.config.numParallelWorkers, c.numParallelWorkers),
        decKey: prior.config.decKey ?? null,
      });
    }
    const started: ServableRuntime[] = [];
    try {
      for (const plan of plans.values()) started.push(await this.launch(plan));
    } catch (err) {
      await Promise.all(started.map((rt) => rt.stop()));
      throw err;
    }
    for (const rt of started) this.register(rt);
    for (const c of list) if (c.versionNumber === 0) this.followNewest.set(c.servableName, c);
  }

  private async planStart(config: ServableStartConfig, version?: number): Promise<StartPlan> {
    const location = await locateServable(config.servableDirectory, config.servableName);
    const loaded = await loadServableConfig(location.configPath, config.servableName);
    const resolved = version ?? (await resolveVersion(location, config.versionNumber, loaded.models.length > 0));
    if (this.servables.get(config.servableName)?.has(resolved)) {
      throw new ServingError('E_INVALID_ARGUMENT', `servable '${config.servableName}' version ${resolved} is already started`);
    }
    return { config, version: resolved, loaded, location };
  }

  private async launch(plan: StartPlan): Promise<ServableRuntime> {
    const name = plan.config.servableName;
    const rt = await ServableRuntime.create(plan.location, plan.version, plan.loaded, plan.config, this.log, this.metrics?.observer(name));
    this.log(`servable '${name}' version ${rt.version} started on devices [${plan.config.deviceIds.join(', ')}]`);
    return rt;
  }

  private register(rt: ServableRuntime): void {
    let versions = this.servables.get(rt.name);
    if (!versions) this.servables.set(rt.name, (versions = new Map()));
    versions.set(rt.version, rt);
  }

  /**
   * Version hot reload for servables started with version 0 ("follow the newest"): when a
   * newer numbered folder has appeared, loads it, routes new requests to it, and unloads the
   * version it replaces once that version's in-flight work has ended (availability first: no
   * request is dropped). Resolves with the versions loaded.
   */
  reload(): Promise<{ servable: string; from: number; to: number }[]> {
    const run = this.starting.then(() => this.doReload());
    this.starting = run.catch(() => undefined);
    return run;
  }

  private async doReload(): Promise<{ servable: string; from: number; to: number }[]> {
    const changes: { servable: string; from: number; to: number }[] = [];
    for (const [name, config] of this.followNewest) {
      const versions = this.servables.get(name);
      if (!versions || versions.size === 0) continue;
      const current = Math.max(...versions.keys());
      const location = await locateServable(config.servableDirectory, name);
      const newest = (await listVersions(location.dir)).at(-1) ?? 0;
      if (newest <= current) continue;
      const rt = await this.launch(await this.planStart(config, newest));
      this.register(rt);
      const old = versions.get(current)!;
      versions.delete(current);
      changes.push({ servable: name, from: current, to: newest });
      this.log(`servable '${name}': version ${newest} serves; unloading version ${current} after its in-flight requests`);
      void old.drain(DEFAULT_DRAIN_TIMEOUT_MS);
    }
    return changes;
  }

  /** Polls for new version folders every `intervalMs` and reloads (see `reload`). Returns a stop function. */
  watchVersions(intervalMs = 2_000): () => void {
    const timer = setInterval(() => {
      this.reload().catch((err: unknown) => this.log(`version reload failed: ${(err as Error).message}`));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
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
      const code = (err as ServingError).code ?? 'E_INTERNAL';
      // Unknown names are not used as label values: clients could grow the label set at will.
      this.metrics?.request('', '', '', options.transport ?? 'engine', 0, code);
      this.requestLog?.({ requestId: options.requestId, servable, method, version: options.versionNumber, transport: options.transport ?? 'engine', instances: Array.isArray(instances) ? instances.length : 0, code, ms: 0 });
      return Promise.reject(err);
    }
    const work = rt.inferEach(method, instances, options);
    const metrics = this.metrics;
    const requestLog = this.requestLog;
    if (!metrics && !requestLog) return work;
    const started = performance.now();
    const known = rt.hasMethod(method) ? method : '';
    const transport = options.transport ?? 'engine';
    const record = (code: string | undefined): void => {
      const seconds = (performance.now() - started) / 1000;
      metrics?.request(rt.name, known, rt.version, transport, seconds, code);
      requestLog?.({ requestId: options.requestId, servable: rt.name, method, version: rt.version, transport, instances: instances.length, code, ms: seconds * 1000 });
    };
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

  /**
   * Starts the REST transport (MindSpore RESTful protocol, msgpack, /healthz, /readyz,
   * /metrics) on `host:port` or `unix:/path`. It stops with `stop()`/`drain()`.
   */
  async startRestfulServer(address: string, options?: RestServerOptions): Promise<RestServer> {
    const rest = await import('../transports/rest/server.js');
    const listener = await rest.startRestfulServer(this, address, options);
    this.listeners.push(listener);
    return listener;
  }

  /**
   * Starts the gRPC transport (MindSpore-compatible `MSService.Predict` and our streaming
   * `actorserve.v1` service) on `host:port` or `unix:/path`. It stops with `stop()`/`drain()`.
   */
  async startGrpcServer(address: string, options?: GrpcServerOptions): Promise<GrpcServer> {
    const grpc = await import('../transports/grpc/server.js');
    const listener = await grpc.startGrpcServer(this, address, options);
    this.listeners.push(listener);
    return listener;
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
    // Listeners stop accepting now and finish their exchanges in the background.
    const closing = this.closeListeners();
    while (this.inflight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const cut = this.inflight;
    await this.stopServables();
    await closing;
    return cut;
  }

  /** Stops the transports, then every servable: queued work is answered with E_STOPPED, device actors end. */
  async stop(): Promise<void> {
    this.draining = true;
    await Promise.all([this.closeListeners(), this.stopServables()]);
    this.draining = false;
  }

  private closeListeners(): Promise<unknown> {
    const all = this.listeners.splice(0);
    return Promise.all(all.map((l) => l.close().catch((err: unknown) => this.log(`closing a listener failed: ${(err as Error).message}`))));
  }

  private async stopServables(): Promise<void> {
    const all = this.runtimes();
    this.servables.clear();
    this.followNewest.clear();
    await Promise.all(all.map((rt) => rt.stop()));
  }
}

/** A new, independent server (tests, or several engines in one process). */
export function createServer(): ServingServer {
  return new ServingServer();
}
