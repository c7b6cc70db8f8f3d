/**
 * The engine facade: the one object transports, the CLI and embedding programs hold. It owns
 * the servable lifecycle (loading configs, resolving versions, starting and stopping the
 * runtime's supervisors, hot reload, drain), resolves request targets (servable, version,
 * method) in one place, and counts requests for metrics and the access log.
 *
 * Layer: above the runtime (actors/), below the transports. Transports import this module's
 * types, never actors/; the MindSpore-shaped `startGrpcServer`/`startRestfulServer` are
 * composed on top of it by the package entry (index.ts), so nothing here knows a transport.
 */
import { loadServableConfig, type LoadedConfig } from '../engine/config-loader.js';
import { InstanceErrors, ServingError } from '../engine/errors.js';
import { closest, libraryMessage } from '../engine/option-schema.js';
import { waitUntil } from '../engine/wait.js';
import type { InferOptions, InstanceOutcome, MethodInfo, StreamEvent } from '../engine/inference.js';
import { listVersions, locateServable, resolveBeside, resolveVersion, type ServableLocation } from '../engine/servable-dir.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { describePlan } from '../engine/device-plan.js';
import type { MethodGraph } from '../engine/method-graph.js';
import type { Instance } from '../engine/tensor.js';
import { ServingMetrics, type Transport } from '../engine/serving-metrics.js';
import { ServableRuntime } from '../actors/servable-runtime.js';
import { AgentCoordinator } from '../actors/agent-coordinator.js';
import { type DistributedStartOptions, checkDistributedStart } from '../engine/distributed.js';
import { readRankTable } from '../engine/rank-table.js';
import { type RepositoryEntry, findServable, repositoryIndex } from './repository.js';
import { OpenedStream, type StreamRecorder } from './streams.js';

export type { InferOptions, InstanceOutcome, MethodInfo, MethodInput, RequestParameters, StreamEvent } from '../engine/inference.js';
export type { Transport } from '../engine/serving-metrics.js';
export type { RepositoryEntry } from './repository.js';

/** Options of one request once its target is resolved. */
export interface TargetInferOptions extends InferOptions {
  /** Which transport the request came through (a metrics label); default 'engine'. */
  transport?: Transport;
  /** Correlates logs and replies; transports generate one when the client sends none. */
  requestId?: string;
}

export interface EngineInferOptions extends TargetInferOptions {
  /** 0 or absent: the newest loaded version. */
  versionNumber?: number;
}

/** Who asks for a target, so a refused lookup is counted and logged like any failed request. */
export interface LookupContext {
  readonly transport?: Transport;
  readonly requestId?: string;
}

/**
 * A resolved (servable, version, method): what a transport decodes a request against
 * (`info.inputs`: names, model dtypes and dims) and then runs. Resolve one per request: a
 * target keeps the version it resolved to, even when a newer one is loaded meanwhile.
 */
export interface MethodTarget {
  readonly servable: string;
  readonly version: number;
  readonly info: MethodInfo;
  /** Runs the method; resolves with each instance's outcome, rejects for whole-request problems. */
  inferEach(instances: readonly unknown[], options?: TargetInferOptions): Promise<InstanceOutcome[]>;
  /**
   * Runs the method as a stream of events: a streaming method's partial results as they are
   * made (`info.stream`), any other method's outcome per instance; `index` is the instance's
   * position. Whole-request problems reject the first `next()`. Ends once every instance
   * finished; `return()` (breaking out of `for await`) or `options.signal` stops the work.
   */
  inferStream(instances: readonly unknown[], options?: TargetInferOptions): AsyncIterableIterator<StreamEvent>;
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

export interface ServingEngineOptions {
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

/** One loaded servable version as metadata endpoints show it. */
export interface ServableMetadata {
  readonly name: string;
  /** The version described (the newest loaded when asked for version 0). */
  readonly version: number;
  /** Every loaded version, ascending. */
  readonly versions: readonly number[];
  readonly methods: readonly MethodInfo[];
}

export type LogFn = (line: string) => void;

/** A version switch made by `reload()`: `to` > `from` for a new folder, `to` < `from` for a fallback. */
export interface VersionChange {
  readonly servable: string;
  readonly from: number;
  readonly to: number;
}

interface StartPlan {
  config: ServableStartConfig;
  readonly version: number;
  readonly loaded: LoadedConfig;
  readonly location: ServableLocation;
}

export class ServingEngine {
  /** The start-config class, reachable as `server.ServableStartConfig` like MindSpore's module. */
  readonly ServableStartConfig = ServableStartConfig;
  private readonly servables = new Map<string, Map<number, ServableRuntime>>();
  private starting: Promise<unknown> = Promise.resolve();
  private draining = false;
  /**
   * The start config each servable was last started with (kept after an unload): the control
   * API loads a servable again with it, and its directory is part of the repository index.
   */
  private readonly startConfigs = new Map<string, ServableStartConfig>();
  /** Distributed servables waiting for their agents (stop() ends the wait). */
  private readonly waitingForAgents = new Map<string, AgentCoordinator>();
  /** Servables started with version 0, whose newer versions `reload()` picks up. */
  private readonly followNewest = new Map<string, ServableStartConfig>();
  /** Followed servables whose serving version's folder is gone with none left (logged once). */
  private readonly orphaned = new Set<string>();
  /** Prometheus metrics of this server (`metrics.render()` is what `/metrics` serves). */
  readonly metrics: ServingMetrics | undefined;
  log: LogFn = (line) => process.stderr.write(`[actorserve] ${line}\n`);
  /** Transports attached to this engine; closed first when it stops. */
  private readonly listeners: Listener[] = [];
  /** Resolved targets per runtime; they go with the runtime when its version unloads. */
  private readonly targets = new WeakMap<ServableRuntime, Map<string, ResolvedMethod>>();
  /** What a target needs to count requests and refuse them while draining. */
  private readonly recorder: RequestRecorder = {
    draining: () => this.draining,
    metrics: () => this.metrics,
    requestLog: () => this.requestLog,
  };
  /** Called once per finished request when set (the access log). */
  requestLog: ((entry: RequestLogEntry) => void) | undefined;

  constructor(options: ServingEngineOptions = {}) {
    this.metrics = options.metrics === false ? undefined : new ServingMetrics(() => this.runtimes().map((rt) => rt.stats));
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
        // ids named by either (absent in both: planned at start)
        deviceIds: prior.config.deviceIds || c.deviceIds ? [...new Set([...(prior.config.deviceIds ?? []), ...(c.deviceIds ?? [])])] : null,
        intraOpThreads: prior.config.intraOpThreads ?? c.intraOpThreads ?? null,
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
    for (const c of list) this.startConfigs.set(c.servableName, c);
  }

  /**
   * The servables the servable directories hold (the directories servables were started
   * from), with their version folders, and which versions are loaded.
   */
  repositoryIndex(): Promise<RepositoryEntry[]> {
    const loaded = new Map([...this.servables.keys()].map((name) => [name, this.loadedVersions(name)] as const));
    return repositoryIndex([...this.startConfigs.values()].map((c) => c.servableDirectory), loaded);
  }

  /**
   * Loads a servable that is not loaded, from the directories servables were started from:
   * with the start config it was last started with, else with the options of the servable
   * started last (its key not carried over), at `versionNumber` (0 = the newest, followed by
   * `reload()`). Resolves with the versions loaded.
   */
  async loadServable(name: string, versionNumber = 0): Promise<number[]> {
    if (this.draining) throw stoppedError();
    const loaded = this.loadedVersions(name);
    if (loaded.length > 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `servable '${name}' is already loaded (versions ${loaded.join(', ')}); unload it first`);
    }
    let config = this.startConfigs.get(name);
    if (config === undefined || config.versionNumber !== versionNumber) {
      const template = config ?? [...this.startConfigs.values()].at(-1);
      const directory = config?.servableDirectory ?? (await findServable([...this.startConfigs.values()].map((c) => c.servableDirectory), name));
      if (template === undefined || directory === undefined) {
        const known = (await this.repositoryIndex()).map((e) => e.name);
        throw new ServingError('E_UNKNOWN_SERVABLE', `no servable '${name}' in the servable directory${known.length ? ` (available: ${known.join(', ')})` : ''}`);
      }
      config = new ServableStartConfig({ ...template, servableDirectory: directory, servableName: name, versionNumber, decKey: config?.decKey ?? null });
    }
    await this.startServables(config);
    return this.loadedVersions(name);
  }

  /**
   * Unloads every version of one servable: new requests for it are refused at once
   * (E_UNKNOWN_SERVABLE), requests in flight finish for up to `timeoutMs`, then its device
   * actors and stage threads stop. Resolves with the versions unloaded.
   */
  unloadServable(name: string, timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS): Promise<number[]> {
    let versions: Map<number, ServableRuntime>;
    try {
      versions = this.versionsOf(name);
    } catch (err) {
      return Promise.reject(err);
    }
    const runtimes = [...versions.values()];
    this.servables.delete(name);
    this.followNewest.delete(name);
    this.log(`servable '${name}': unloading versions ${runtimes.map((rt) => rt.version).join(', ')} after their in-flight requests`);
    return Promise.all(runtimes.map((rt) => rt.drain(timeoutMs))).then(() => runtimes.map((rt) => rt.version).sort((a, b) => a - b));
  }

  /**
   * Starts a distributed servable (MindSpore's `distributed.start_servable`): reads and checks
   * the rank table, listens for agents on `distributedAddress`, waits for every rank to register
   * (up to `waitAgentsTimeInSeconds`, 0 = forever), then serves the servable like a local one.
   * Its ranks run in agent processes (`distributed.startupAgents`, `actorserve agent`).
   */
  async startDistributedServable(servableDirectory: string, servableName: string, options: DistributedStartOptions): Promise<void> {
    // Loading the config and binding the address are serialised with other starts; waiting for
    // the agents is not (other servables may start meanwhile).
    const prepared = this.starting.then(() => this.prepareDistributed(servableDirectory, servableName, options));
    this.starting = prepared.catch(() => undefined);
    const { coordinator, waitMs, create, key } = await prepared;
    try {
      await coordinator.waitAllReady(waitMs);
      if (this.draining) throw stoppedError();
      const rt = await create();
      this.log(`servable '${servableName}' version ${rt.version} started on ${coordinator.options.rankSize} agent ranks`);
      this.register(rt);
    } catch (err) {
      await coordinator.stop();
      throw err;
    } finally {
      this.waitingForAgents.delete(key);
    }
  }

  private async prepareDistributed(servableDirectory: string, servableName: string, options: DistributedStartOptions) {
    if (this.draining) throw stoppedError();
    const o = checkDistributedStart(options);
    const config = new ServableStartConfig({
      servableDirectory,
      servableName,
      versionNumber: o.versionNumber || 1,
      maxQueuedRequests: o.maxQueuedRequests,
      defaultDeadlineMs: o.defaultDeadlineMs,
      numParallelWorkers: o.numParallelWorkers,
    });
    const location = await locateServable(config.servableDirectory, servableName);
    const loaded = await loadServableConfig(location.configPath, servableName);
    const layout = loaded.models.length === 1 ? loaded.models[0]!.declaration.distributed : undefined;
    if (!layout) {
      throw new ServingError('E_CONFIG_INVALID', `servable '${servableName}' is not declared distributed: its servable_config.ts must call distributed.declareServable(...)`);
    }
    const version = config.versionNumber;
    const key = `${servableName}@${version}`;
    if (this.servables.get(servableName)?.has(version) || this.waitingForAgents.has(key)) {
      throw new ServingError('E_INVALID_ARGUMENT', `servable '${servableName}' version ${version} is already started`);
    }
    const tableFile = await resolveBeside(location.dir, o.rankTableJsonFile);
    const table = await readRankTable(tableFile, layout.rankSize, layout.stageSize);
    const coordinator = await AgentCoordinator.start({
      address: o.distributedAddress,
      servableName,
      versionNumber: version,
      ...layout,
      table,
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      heartbeatTimeoutMs: o.heartbeatTimeoutMs,
      predictTimeoutMs: o.predictTimeoutMs,
      sslConfig: o.sslConfig,
      log: (line) => this.log(line),
    });
    this.waitingForAgents.set(key, coordinator);
    const listening = o.distributedAddress.replace(/:\d+$/, `:${coordinator.port}`);
    this.log(`servable '${servableName}': waiting for ${layout.rankSize} agent ranks to register at ${listening}${o.sslConfig ? ' (TLS)' : ''}`);
    const create = () =>
      ServableRuntime.create(location, version, loaded, config, this.log, this.metrics?.observer(servableName), (onCapacity) => coordinator.pool(onCapacity));
    return { coordinator, waitMs: o.waitAgentsTimeInSeconds * 1000, create, key };
  }

  private async planStart(config: ServableStartConfig, version?: number): Promise<StartPlan> {
    const location = await locateServable(config.servableDirectory, config.servableName);
    const loaded = await loadServableConfig(location.configPath, config.servableName);
    if (loaded.models.some((m) => m.declaration.distributed)) {
      throw new ServingError('E_CONFIG_INVALID', `servable '${config.servableName}' is declared distributed (distributed.declareServable): start it with distributed.startServable`);
    }
    const resolved = version ?? (await resolveVersion(location, config.versionNumber, loaded.models.length > 0));
    if (this.servables.get(config.servableName)?.has(resolved)) {
      throw new ServingError('E_INVALID_ARGUMENT', `servable '${config.servableName}' version ${resolved} is already started`);
    }
    return { config, version: resolved, loaded, location };
  }

  private async launch(plan: StartPlan): Promise<ServableRuntime> {
    const name = plan.config.servableName;
    const rt = await ServableRuntime.create(plan.location, plan.version, plan.loaded, plan.config, this.log, this.metrics?.observer(name));
    const devices = rt.devicePlan ? `on devices [${rt.devicePlan.deviceIds.join(', ')}]: ${describePlan(rt.devicePlan)}` : '(no models: no device actors)';
    this.log(`servable '${name}' version ${rt.version} started ${devices}`);
    return rt;
  }

  private register(rt: ServableRuntime): void {
    let versions = this.servables.get(rt.name);
    if (!versions) this.servables.set(rt.name, (versions = new Map<number, ServableRuntime>()));
    versions.set(rt.version, rt);
  }

  /**
   * Version hot reload for servables started with version 0 ("follow the newest"): when a
   * newer numbered folder has appeared, loads it, routes new requests to it, and unloads the
   * version it replaces once that version's in-flight work has ended (availability first: no
   * request is dropped). When the folder of the serving version was removed, falls back the
   * same way to the newest version folder that remains; with none left, the version keeps
   * serving from memory and the log says so once (a servable is never left with no version).
   * Resolves with the versions switched (`to` < `from` for a fallback).
   */
  reload(): Promise<VersionChange[]> {
    const run = this.starting.then(() => this.doReload());
    this.starting = run.catch(() => undefined);
    return run;
  }

  private async doReload(): Promise<VersionChange[]> {
    const changes: VersionChange[] = [];
    for (const [name, config] of this.followNewest) {
      const versions = this.servables.get(name);
      if (!versions || versions.size === 0) continue;
      const current = Math.max(...versions.keys());
      const old = versions.get(current)!;
      const location = await locateServable(config.servableDirectory, name);
      const present = await listVersions(location.dir);
      // A model-less servable needs no version folder: its version is the config alone.
      const removed = old.hasModels && !present.includes(current);
      const newest = present.at(-1);
      if (!removed) this.orphaned.delete(name);
      if (newest === undefined || (newest <= current && !removed)) {
        if (removed && !this.orphaned.has(name)) {
          this.orphaned.add(name);
          this.log(`servable '${name}': the folder of version ${current} was removed and no numbered version folder remains; version ${current} keeps serving from memory`);
        }
        continue;
      }
      const rt = await this.launch(await this.planStart(config, newest));
      this.register(rt);
      versions.delete(current);
      this.orphaned.delete(name);
      changes.push({ servable: name, from: current, to: newest });
      const why = newest > current ? '' : `the folder of version ${current} was removed; `;
      this.log(`servable '${name}': ${why}version ${newest} serves; unloading version ${current} after its in-flight requests`);
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

  /**
   * The runtime (supervisor) that serves (servable, version); version 0 = the newest loaded.
   * For operators and tests (stats, device actors); requests go through `lookup`.
   */
  runtime(servable: string, versionNumber = 0): ServableRuntime {
    const versions = this.versionsOf(servable);
    if (!Number.isSafeInteger(versionNumber) || versionNumber < 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `version must be an integer >= 0, got ${versionNumber}`);
    }
    const rt = versions.get(versionNumber === 0 ? Math.max(...versions.keys()) : versionNumber);
    if (!rt) {
      throw new ServingError(
        'E_UNKNOWN_VERSION',
        `servable '${servable}' has no loaded version ${versionNumber} (loaded: ${[...versions.keys()].join(', ')})`,
      );
    }
    return rt;
  }

  /** The loaded versions of a servable; E_UNKNOWN_SERVABLE when it has none. */
  private versionsOf(servable: string): Map<number, ServableRuntime> {
    const versions = this.servables.get(servable);
    if (!versions || versions.size === 0) {
      const known = [...this.servables.keys()];
      throw new ServingError('E_UNKNOWN_SERVABLE', `servable '${servable}' is not loaded${known.length ? ` (loaded: ${known.join(', ')})` : ''}`);
    }
    return versions;
  }

  /** The loaded version numbers of a servable, ascending (none: empty). */
  private loadedVersions(servable: string): number[] {
    return [...(this.servables.get(servable)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Resolves a request's target: the servable, its version (0 = newest loaded) and the method.
   * The one place that raises E_UNKNOWN_SERVABLE, E_UNKNOWN_VERSION and E_UNKNOWN_METHOD; a
   * refusal is counted in the metrics and the access log under `context`'s transport.
   */
  lookup(servable: string, method: string, versionNumber = 0, context: LookupContext = {}): MethodTarget {
    return this.resolve(servable, method, versionNumber, context);
  }

  private resolve(servable: string, method: string, versionNumber: number, context: LookupContext): ResolvedMethod {
    try {
      if (this.draining) throw stoppedError();
      const rt = this.runtime(servable, versionNumber);
      let targets = this.targets.get(rt);
      if (!targets) this.targets.set(rt, (targets = new Map<string, ResolvedMethod>()));
      let target = targets.get(method);
      if (!target) {
        const graph = rt.method(method);
        if (!graph) {
          throw new ServingError(
            'E_UNKNOWN_METHOD',
            `servable '${rt.name}' has no method ${JSON.stringify(method)} (methods: ${rt.methodNames().join(', ')})`,
          );
        }
        target = new ResolvedMethod(this.recorder, rt, graph);
        targets.set(method, target);
      }
      return target;
    } catch (err) {
      this.refused(err, servable, method, versionNumber, context, 0);
      throw err;
    }
  }

  /**
   * Runs a method on instances; resolves with each instance's outcome (outputs or error).
   * Whole-request problems (unknown servable/method/version, zero instances, overload,
   * deadline) reject.
   */
  inferEach(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions = {}): Promise<InstanceOutcome[]> {
    let target: ResolvedMethod;
    try {
      target = this.requestTarget(servable, method, instances, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return target.run(instances, options); // its options are checked: versionNumber is one of them
  }

  /** Checks a request's options and resolves its target; a refusal is counted and thrown. */
  private requestTarget(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions): ResolvedMethod {
    try {
      checkInferOptions(options, ENGINE_INFER_KEYS);
      return this.resolve(servable, method, options.versionNumber ?? 0, NOT_RECORDED);
    } catch (err) {
      this.refused(err, servable, method, options.versionNumber, options, Array.isArray(instances) ? instances.length : 0);
      throw err;
    }
  }

  /**
   * Runs a method as a stream of events (MethodTarget.inferStream): partial results of a
   * streaming method as its stream stage yields them, one event per instance of any other.
   * Whole-request problems (unknown servable/method/version, zero instances, overload) reject
   * the first `next()`.
   */
  inferStream(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions = {}): AsyncIterableIterator<StreamEvent> {
    return new OpenedStream(() => this.requestTarget(servable, method, instances, options).openStream(instances, options));
  }

  /** Like `inferEach`, but rejects with InstanceErrors when any instance failed. */
  async infer(servable: string, method: string, instances: readonly unknown[], options: EngineInferOptions = {}): Promise<Instance[]> {
    const outcomes = await this.inferEach(servable, method, instances, options);
    if (outcomes.some((o) => o instanceof ServingError)) {
      throw new InstanceErrors(outcomes.map((o) => (o instanceof ServingError ? o : undefined)));
    }
    return outcomes as Instance[];
  }

  /**
   * Counts a request a transport refused before resolving or running it (a body it cannot
   * parse, a bad header, a body too large or too slow, a malformed tensor): under empty
   * servable, method and version labels with its transport, as `lookup` counts unknown names.
   * `code` is the error code, or `HTTP_<status>` for an HTTP framing refusal that has none.
   */
  countRefused(transport: Transport, code: string): void {
    this.metrics?.refused(transport, code);
  }

  /** Counts and logs a request refused before it reached a runtime. */
  private refused(err: unknown, servable: string, method: string, version: number | undefined, context: LookupContext, instances: number): void {
    if (context === NOT_RECORDED) return;
    const code = (err as ServingError).code ?? 'E_INTERNAL';
    const transport = context.transport ?? 'engine';
    // Unknown names are not used as label values: clients could grow the label set at will.
    this.metrics?.request('', '', '', transport, 0, code);
    this.requestLog?.({ requestId: context.requestId, servable, method, version, transport, instances, code, ms: 0 });
  }

  /** Loaded servables, their versions and methods. */
  describe(): ServableInfo[] {
    return [...this.servables.keys()].map((name) => ({ name, versions: this.loadedVersions(name), methods: this.runtime(name).describe() }));
  }

  /**
   * The methods of one loaded servable version (0 = the newest) with their inputs (name, and
   * the model's dtype and dims where an input feeds a model directly) and outputs. Throws
   * E_UNKNOWN_SERVABLE or E_UNKNOWN_VERSION as `lookup` does (not counted: no request runs).
   */
  metadata(servable: string, versionNumber = 0): ServableMetadata {
    const rt = this.runtime(servable, versionNumber);
    return { name: rt.name, version: rt.version, versions: this.loadedVersions(servable), methods: rt.describe() };
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
   * Hands a started listener (a transport's server) to the engine: `stop()` and `drain()` close
   * it first, so no new request arrives while servables stop.
   */
  attachListener(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Requests admitted and not yet answered, over every servable. */
  get inflight(): number {
    return this.runtimes().reduce((n, rt) => n + rt.stats.inflight, 0);
  }

  /**
   * Graceful drain: refuses new requests (E_STOPPED), lets admitted ones finish for up to
   * `timeoutMs`, then stops — what is still running is answered with E_STOPPED. Resolves with
   * the number of requests that had to be cut off.
   */
  async drain(timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS): Promise<number> {
    this.draining = true;
    const deadline = performance.now() + timeoutMs;
    // Listeners stop accepting now and finish their exchanges in the background, within the
    // same timeout (a gRPC stream a client keeps open must not outlast the drain).
    const closing = this.closeListeners(timeoutMs);
    await waitUntil(() => this.inflight === 0, deadline);
    const cut = this.inflight;
    // Each runtime lets its stage tasks finish in what is left of the timeout, then cuts off.
    const left = Math.max(0, deadline - performance.now());
    await this.stopServables((rt) => rt.drain(left));
    await closing;
    return cut;
  }

  /** Stops the transports, then every servable: queued work is answered with E_STOPPED, device actors end. */
  async stop(): Promise<void> {
    this.draining = true;
    await Promise.all([this.closeListeners(), this.stopServables()]);
    this.draining = false;
  }

  private closeListeners(timeoutMs?: number): Promise<unknown> {
    const all = this.listeners.splice(0);
    return Promise.all(all.map((l) => l.close(timeoutMs).catch((err: unknown) => this.log(`closing a listener failed: ${(err as Error).message}`))));
  }

  private async stopServables(end: (rt: ServableRuntime) => Promise<void> = (rt) => rt.stop()): Promise<void> {
    const all = this.runtimes();
    this.servables.clear();
    this.followNewest.clear();
    this.orphaned.clear();
    const waiting = [...this.waitingForAgents.values()];
    this.waitingForAgents.clear();
    await Promise.all([...all.map(end), ...waiting.map((c) => c.stop())]);
  }
}

/** The keys each infer call takes: a typo such as `deadlineMS` is refused, never ignored. */
const ENGINE_INFER_OPTIONS: Record<keyof EngineInferOptions, true> = {
  deadlineMs: true,
  signal: true,
  sequence: true,
  parameters: true,
  transport: true,
  requestId: true,
  versionNumber: true,
};
const ENGINE_INFER_KEYS: ReadonlySet<string> = new Set(Object.keys(ENGINE_INFER_OPTIONS));
const TARGET_INFER_KEYS: ReadonlySet<string> = new Set([...ENGINE_INFER_KEYS].filter((k) => k !== 'versionNumber'));

/** Refuses an unknown key of a request's options (a loop over a handful of keys: cheap enough per request). */
function checkInferOptions(options: object, known: ReadonlySet<string>): void {
  for (const key in options) {
    if (!known.has(key)) throw new ServingError('E_INVALID_ARGUMENT', libraryMessage('infer options', { kind: 'unknown', path: [], key, suggestion: closest(key, [...known]), known: [...known] }));
  }
}

function stoppedError(): ServingError {
  return new ServingError('E_STOPPED', 'the server is draining and takes no new requests');
}

/** Something that serves requests to the engine and can be closed (a transport's server). */
export interface Listener {
  /** Stops accepting; exchanges in flight get up to `timeoutMs` (a drain's), else the listener's own close timeout. */
  close(timeoutMs?: number): Promise<void>;
}

/** The lookup inside `inferEach` does not count a refusal itself: `inferEach` knows the instance count. */
const NOT_RECORDED: LookupContext = Object.freeze({});

interface RequestRecorder {
  draining(): boolean;
  metrics(): ServingMetrics | undefined;
  requestLog(): ((entry: RequestLogEntry) => void) | undefined;
}

/** A target bound to its runtime and method graph; counts what it runs. */
class ResolvedMethod implements MethodTarget {
  readonly servable: string;
  readonly version: number;
  readonly info: MethodInfo;

  constructor(
    private readonly recorder: RequestRecorder,
    private readonly rt: ServableRuntime,
    private readonly graph: MethodGraph,
  ) {
    this.servable = rt.name;
    this.version = rt.version;
    this.info = rt.describeMethod(graph);
  }

  inferEach(instances: readonly unknown[], options: TargetInferOptions = {}): Promise<InstanceOutcome[]> {
    try {
      checkInferOptions(options, TARGET_INFER_KEYS);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.run(instances, options);
  }

  inferStream(instances: readonly unknown[], options: TargetInferOptions = {}): AsyncIterableIterator<StreamEvent> {
    return new OpenedStream(() => {
      checkInferOptions(options, TARGET_INFER_KEYS);
      return this.openStream(instances, options);
    });
  }

  /** Opens the method's stream with options already checked (throws for whole-request problems, counted). */
  openStream(instances: readonly unknown[], options: TargetInferOptions): { events: AsyncIterableIterator<StreamEvent>; recorder: StreamRecorder } {
    const record = this.record(instances, options);
    const metrics = this.recorder.metrics();
    try {
      if (this.recorder.draining()) throw stoppedError();
      const events = this.rt.inferStream(this.graph, instances, options);
      return { events, recorder: { ended: record, outputs: () => metrics?.streamEvent(this.servable, this.info.name) } };
    } catch (err) {
      record((err as ServingError).code ?? 'E_INTERNAL');
      throw err;
    }
  }

  /** Counts a request of this method in the metrics and the access log once it ends (with its first error code). */
  private record(instances: readonly unknown[], options: TargetInferOptions): (code: string | undefined) => void {
    const transport = options.transport ?? 'engine';
    const metrics = this.recorder.metrics();
    const requestLog = this.recorder.requestLog();
    const count = Array.isArray(instances) ? instances.length : 0;
    const started = performance.now();
    return (code) => {
      const seconds = (performance.now() - started) / 1000;
      metrics?.request(this.servable, this.info.name, this.version, transport, seconds, code);
      requestLog?.({ requestId: options.requestId, servable: this.servable, method: this.info.name, version: this.version, transport, instances: count, code, ms: seconds * 1000 });
    };
  }

  /** Runs the method with options already checked; counts the request when it ends. */
  run(instances: readonly unknown[], options: TargetInferOptions): Promise<InstanceOutcome[]> {
    let work: Promise<InstanceOutcome[]>;
    if (this.recorder.draining()) {
      work = Promise.reject(stoppedError());
    } else {
      work = this.rt.inferEach(this.graph, instances, options);
      if (!this.recorder.metrics() && !this.recorder.requestLog()) return work;
    }
    const record = this.record(instances, options);
    return work.then(
      (outcomes) => {
        const failed = outcomes.find((o): o is ServingError => o instanceof ServingError);
        record(failed?.code);
        return outcomes;
      },
      (err: unknown) => {
        record((err as ServingError).code ?? 'E_INTERNAL');
        throw err;
      },
    );
  }
}
