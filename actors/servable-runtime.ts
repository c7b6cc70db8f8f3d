/**
 * The supervisor of one loaded servable version: device actors (DeviceGroup), dynamic
 * batching (ModelScheduler), the stage pool, and the execution of method graphs for requests.
 * A request's instances go through the stages in order; an instance that fails at a stage is
 * answered with that error and skips the rest, the others carry on.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { Cancellation } from '../engine/cancellation.js';
import { type DevicePlan, needsCost, planDevices } from '../engine/device-plan.js';
import { ServingError, toServingError } from '../engine/errors.js';
import { waitUntil } from '../engine/wait.js';
import { type FunctionStage, type MethodGraph, type ModelStage, type Stage, type ValueRef, streamStage } from '../engine/method-graph.js';
import { joinPartials } from '../engine/stream-results.js';
import type { LoadedConfig } from '../engine/config-loader.js';
import { type ServableLocation, modelFilePath } from '../engine/servable-dir.js';
import type { ServableStartConfig } from '../engine/start-config.js';
import { type Instance, type Tensor, checkTensor } from '../engine/tensor.js';
import { checkDeclared, declarationConflict } from '../engine/declared-inputs.js';
import { isNumericDType } from '../engine/dtypes.js';
import { castTensor } from '../native/dtype-cast.js';
import { BatchPlan } from './batch-plan.js';
import { DeviceGroup } from './device-group.js';
import { DeviceHandle, localDeviceFactory } from './device-handle.js';
import type { DevicePool } from './device.js';
import { ModelScheduler, type RequestState, type SchedulerStats } from './model-scheduler.js';
import type { DeviceGraphs, GraphInfo, ValueInfo } from './protocol.js';
import { type Sequence, type SequenceAdmission, SequenceRegistry, type SequenceStep, readStateInitials } from './sequences.js';
import { type ModelCaller, STREAM_TASKS_PER_THREAD, StagePool, type StreamRun, type StreamRunOptions } from './stage-pool.js';
import { StreamEvents } from './stream-events.js';
import type { ModelCall, ModelSequenceControl } from './stage-protocol.js';
import { type LoadedStateDeclaration, planStateGraphs } from '../engine/sequence.js';
import type { BatchObserver, RuntimeFigures } from '../engine/serving-metrics.js';
import { type InferOptions, type InstanceOutcome, type MethodInfo, type MethodLayout, type RequestParameters, type StreamEvent, type TensorLayout, isParameterValue } from '../engine/inference.js';

/** One loaded servable version's live figures (ServableRuntime.stats). */
export interface RuntimeStats extends RuntimeFigures, SchedulerStats {}

const NO_BATCHES: SchedulerStats = Object.freeze({ batches: 0, instances: 0, batchSizes: new Map(), batchesByDevice: new Map(), retried: 0 });

const SLOTS_PER_ACTOR = 2;
/** The largest batch the device plan's warm-up run tries (engine/device-plan.ts). */
const WARMUP_BATCH = 8;
const INITIAL_SLOT_BYTES = 64 * 1024;

/**
 * Makes the devices of a servable whose devices are not local device actors (a distributed
 * servable's ranks); `onCapacity` is called when the scheduler may dispatch again.
 */
export type PoolFactory = (onCapacity: () => void) => DevicePool;

/** A request as the runtime tracks it: the scheduler's view plus a signal fired when it ends. */
interface RequestCtx extends RequestState {
  /** Made when a stage task first needs to know (the stage pool skips tasks of ended requests). */
  ended?: Cancellation;
  /** The sequence this request continues, per stateful model index (requests with `sequence`). */
  sequences?: Map<number, SequenceAdmission>;
  /** The request's parameters (InferOptions.parameters), for a stream stage. */
  parameters?: RequestParameters;
  /** Ends the request with this error now, if it is still open (deadline, cancellation, stop()). */
  cutOff(err: ServingError): void;
}

/** An admitted request being tracked (ServableRuntime.openRequest). */
interface OpenRequest {
  readonly ctx: RequestCtx;
  /** Ends the request as answered; false when it had ended already (deadline, cancel, stop). */
  finish(): boolean;
}

export class ServableRuntime {
  readonly name: string;
  readonly version: number;
  private readonly methods: Map<string, MethodGraph>;
  private readonly modelIndex: Map<string, number>;
  /** The devices: local device actors, or a distributed servable's ranks (`pool`). */
  private group: DevicePool;
  /** [model][subgraph] model file paths. */
  private readonly modelFiles: readonly (readonly string[])[];
  /** Device actors × intra-op threads this version runs with, and why (undefined without models or with a pool). */
  devicePlan: DevicePlan | undefined;
  private scheduler!: ModelScheduler;
  private readonly stagePool: StagePool | undefined;
  /** Whether the servable declares models (then its version folder holds their files). */
  readonly hasModels: boolean;
  private inflight = 0;
  /** The requests admitted and not yet answered; stop() answers each E_STOPPED. */
  private readonly open = new Set<RequestCtx>();
  private stopped = false;
  /** Per model stage: how error messages name each input ("method input 'x1'"), made once. */
  private readonly inputLabels = new Map<Stage, readonly (string | undefined)[]>();
  private readonly infos = new Map<MethodGraph, MethodInfo>();
  private readonly methodInputLabelCache = new Map<MethodGraph, readonly string[]>();
  /** The graphs as methods see them: a stateful model's state inputs and outputs left out. */
  private visible: DeviceGraphs = [];
  /** Per stateful model index: its live sequences. */
  private readonly sequences = new Map<number, SequenceRegistry>();
  /** Per model: its state declarations, with the initial values read from files at load (undefined: stateless). */
  private states: readonly (readonly LoadedStateDeclaration[] | undefined)[];
  /** Per method: the stateful models its stages run. */
  private readonly statefulOf = new Map<MethodGraph, number[]>();

  private constructor(
    location: ServableLocation,
    version: number,
    private readonly config: LoadedConfig,
    private readonly start: ServableStartConfig,
    private readonly log: (line: string) => void,
    private readonly pool: PoolFactory | undefined,
  ) {
    this.name = location.name;
    this.version = version;
    this.methods = new Map(config.methods.map((m) => [m.name, m]));
    this.modelIndex = new Map(config.models.map((m, i) => [m.key, i]));
    this.hasModels = config.models.length > 0;
    this.modelFiles = config.models.map((m) => m.declaration.files.map((f) => modelFilePath(location, version, f)));
    this.states = config.models.map((m) => m.declaration.sequence?.state);
    this.group = pool ? pool(() => this.scheduler?.pump()) : this.makeGroup([], 1, false);
    const hasFunctions = config.methods.some((m) => m.stages.some((s) => s.kind === 'function'));
    const streams = config.methods.some((m) => streamStage(m));
    this.stagePool = hasFunctions
      ? new StagePool(Math.max(1, start.numParallelWorkers), start.maxQueuedRequests, { log, ...(streams ? { tasksPerThread: STREAM_TASKS_PER_THREAD } : {}) })
      : undefined;
  }

  /** Loads the models on every device actor and checks the methods against them. */
  static async create(
    location: ServableLocation,
    version: number,
    config: LoadedConfig,
    start: ServableStartConfig,
    log: (line: string) => void,
    observer?: BatchObserver,
    pool?: PoolFactory,
  ): Promise<ServableRuntime> {
    if (!pool && config.models.some((m) => m.declaration.distributed)) {
      throw new ServingError('E_CONFIG_INVALID', `servable '${location.name}' is declared distributed (distributed.declareServable): start it with distributed.startServable`);
    }
    const rt = new ServableRuntime(location, version, config, start, log, pool);
    // Stage threads import the config while the device actors load their models.
    const warm = rt.stagePool?.warmup(config.configPath);
    warm?.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
    try {
      // initial states from files: read once here, they reach each device actor with its init
      rt.states = await Promise.all(
        config.models.map((m, i) => {
          const state = rt.states[i];
          return state ? readStateInitials(m.key, state, (file) => modelFilePath(location, version, file)) : Promise.resolve(undefined);
        }),
      );
      if (rt.hasModels) await rt.startDevices();
      for (const key of Object.keys(start.batching)) {
        if (!config.models.some((m) => m.key === key)) {
          throw new ServingError('E_CONFIG_INVALID', `batching override for '${key}': the servable declares no such model (models: ${config.models.map((m) => m.key).join(', ')})`);
        }
      }
      config.models.forEach((m, i) => {
        // E_CONFIG_INVALID naming the state when a subgraph's state input or output does not fit
        const state = rt.states[i];
        if (state) planStateGraphs(m.key, state, rt.group.graphs[i] ?? []);
      });
      rt.visible = rt.group.graphs.map((subs, i) => subs.map((g) => withoutState(g, config.models[i]!.declaration.sequence?.state)));
      config.models.forEach((m, i) => {
        if (m.declaration.sequence) rt.sequences.set(i, new SequenceRegistry(i, `model '${m.key}'`, m.declaration.sequence));
      });
      const plans = config.models.map((m, i) => {
        const declaration = { ...m.declaration, ...start.batching[m.key] };
        return rt.visible[i]!.map((g, sub) => new BatchPlan(declaration, sub, g));
      });
      rt.scheduler = new ModelScheduler(rt.group, plans, observer);
      for (const m of config.methods) rt.checkMethod(m);
      await warm;
    } catch (err) {
      await rt.stop();
      const e = toServingError(err, 'E_LOAD_FAILED');
      throw new ServingError(e.code, `servable '${location.name}' version ${version}: ${e.message}`, { cause: err });
    }
    return rt;
  }

  private makeGroup(deviceIds: readonly number[], intraOpThreads: number, measureFirst: boolean): DeviceGroup<DeviceHandle> {
    const start = this.start;
    const options = (measureCost: boolean): Parameters<typeof localDeviceFactory>[0] => ({
      init: {
        deviceType: start.deviceType,
        intraOpThreads,
        models: this.config.models.map((m, i) => ({ key: m.key, files: this.modelFiles[i]!, ...(this.states[i] ? { state: this.states[i] } : {}) })),
        ...(start.decKey ? { decryption: { key: start.decKey, mode: start.decMode } } : {}),
        // the batch a warm-up tries: what dynamic batching reaches under load, up to WARMUP_BATCH
        ...(measureCost ? { measureCost: this.config.models.map((m) => (m.declaration.withBatchDim ? Math.min(WARMUP_BATCH, m.declaration.maxBatchSize) : 1)) } : {}),
      },
      slots: SLOTS_PER_ACTOR,
      initialSlotBytes: INITIAL_SLOT_BYTES,
      ...(start.actorMaxOldGenerationMb ? { resourceLimits: { maxOldGenerationSizeMb: start.actorMaxOldGenerationMb } } : {}),
    });
    // Only the first device spawned measures the model's cost (a restart of it need not).
    let measure = measureFirst;
    const measuring = localDeviceFactory(options(true));
    const plain = localDeviceFactory(options(false));
    return new DeviceGroup({
      label: `servable '${this.name}' version ${this.version}`,
      deviceIds,
      spawn: (id, events) => {
        const spawn = measure ? measuring : plain;
        measure = false;
        return spawn(id, events);
      },
      onCapacity: () => this.scheduler?.pump(),
      log: this.log,
    });
  }

  /**
   * Starts the device actors the start config names, or plans them (engine/device-plan.ts):
   * the first actor loads the models and times a warm-up run on one intra-op thread (or the
   * threads configured), then the plan adds actors to it, or replaces it when the plan wants
   * another thread count (ONNX Runtime fixes it when a session is made).
   */
  private async startDevices(): Promise<void> {
    if (this.pool) return this.group.start(); // a distributed servable's ranks: the agents decide
    const { deviceType, deviceIds, intraOpThreads } = this.start;
    const base = { cores: availableParallelism(), deviceType, deviceIds, intraOpThreads, freeMemoryBytes: freemem() };
    if (!needsCost(deviceType, deviceIds, intraOpThreads)) {
      this.devicePlan = planDevices({ ...base, instanceMs: undefined, modelBytes: 0 });
      this.group = this.makeGroup(this.devicePlan.deviceIds, this.devicePlan.intraOpThreads, false);
      return this.group.start();
    }
    const probeId = deviceIds?.[0] ?? 0;
    const probeThreads = intraOpThreads ?? 1;
    const probe = this.makeGroup([probeId], probeThreads, true);
    this.group = probe;
    await probe.start();
    const cost = this.instanceCost(probe.devices()[0]?.warmup);
    const sizes = await Promise.all(this.modelFiles.flat().map((f) => stat(f).then((st) => st.size)));
    const plan = planDevices({ ...base, ...cost, modelBytes: sizes.reduce((a, b) => a + b, 0) });
    this.devicePlan = plan;
    if (plan.intraOpThreads === probeThreads && plan.deviceIds[0] === probeId) return probe.grow(plan.deviceIds.slice(1));
    await probe.stop();
    this.group = this.makeGroup(plan.deviceIds, plan.intraOpThreads, false);
    await this.group.start();
  }

  /**
   * One instance through every model once, from the warm-up runs: a run's time over the
   * instances it held (its dynamic batch, or a fixed batch dim's size).
   */
  private instanceCost(warmup: DeviceHandle['warmup']): { instanceMs: number | undefined; measuredBatch?: number; unmeasured?: string } {
    if (!warmup) return { instanceMs: undefined, unmeasured: 'no warm-up run' };
    let total = 0;
    let measuredBatch = 1;
    for (const [i, model] of this.config.models.entries()) {
      for (const [g, run] of (warmup[i] ?? []).entries()) {
        if (typeof run === 'string') return { instanceMs: undefined, unmeasured: `${model.key}: ${run}` };
        const first = this.group.graphs[i]?.[g]?.inputs[0]?.dims[0];
        const fixed = model.declaration.withBatchDim && typeof first === 'number' && first > 1 ? first : 1;
        total += run.ms / (run.batch > 1 ? run.batch : fixed);
        measuredBatch = Math.max(measuredBatch, run.batch, fixed);
      }
    }
    return { instanceMs: total, measuredBatch };
  }

  private checkMethod(m: MethodGraph): void {
    const stateful: number[] = [];
    m.stages.forEach((stage, i) => {
      if (stage.kind !== 'model') return;
      const graph = this.graph(stage);
      const where = `method '${m.name}' stage ${i + 1} (${stage.tag})`;
      const model = this.modelIndex.get(stage.modelKey)!;
      if (this.sequences.has(model)) {
        if (stateful.includes(model)) throw new ServingError('E_CONFIG_INVALID', `${where}: a method runs a stateful model in one stage at most (each request is one step of its sequence)`);
        stateful.push(model);
      }
      if (stage.args.length !== graph.inputs.length) {
        throw new ServingError('E_CONFIG_INVALID', `${where}: passes ${stage.args.length} inputs, the model takes ${graph.inputs.length}${this.sequences.has(model) ? ' besides its state' : ''}`);
      }
      if (stage.outputsCount !== graph.outputs.length) {
        throw new ServingError('E_CONFIG_INVALID', `${where}: declares ${stage.outputsCount} outputs, the model has ${graph.outputs.length}${this.sequences.has(model) ? ' besides its state' : ''}`);
      }
      stage.args.forEach((a, k) => {
        if (a.stage !== 0) return;
        const declared = m.declaredInputs[a.output];
        const problem = declared && declarationConflict(declared, graph.inputs[k]!, this.batchedInput(stage, k));
        if (problem) {
          throw new ServingError('E_CONFIG_INVALID', `${where}: method input '${m.inputs[a.output]}' is declared ${problem}`);
        }
      });
    });
    this.statefulOf.set(m, stateful);
  }

  /**
   * Admits a request's sequence options for each stateful model of `m` (all or none). Throws
   * E_INVALID_ARGUMENT for a sequence request on a stateless method, a stateful method without
   * one, an unknown or expired id without start, or a second start of a live id.
   */
  private admitSequences(m: MethodGraph, options: InferOptions): Map<number, SequenceAdmission> | undefined {
    const stateful = this.statefulOf.get(m) ?? [];
    if (options.sequence === undefined) {
      if (stateful.length === 0) return undefined;
      throw new ServingError(
        'E_INVALID_ARGUMENT',
        `method '${m.name}' runs a stateful model: a request must name its sequence (sequence_id, with sequence_start on the first request)`,
      );
    }
    if (stateful.length === 0) {
      throw new ServingError('E_INVALID_ARGUMENT', `method '${m.name}' of servable '${this.name}' keeps no state: a request of it takes no sequence`);
    }
    const admitted = new Map<number, SequenceAdmission>();
    try {
      for (const model of stateful) admitted.set(model, this.sequences.get(model)!.admit(options.sequence));
    } catch (err) {
      for (const a of admitted.values()) a.sequence.registry.requestEnded(a);
      throw err;
    }
    return admitted;
  }

  /** Whether model input `k` of `stage` carries a batch dim (its first dim is not part of an instance). */
  private batchedInput(stage: ModelStage, k: number): boolean {
    const declaration = this.declarationOf(stage);
    return declaration.withBatchDim && !declaration.withoutBatchDimInputs.includes(k);
  }

  private declarationOf(stage: ModelStage): LoadedConfig['models'][number]['declaration'] {
    return this.config.models[this.modelIndex.get(stage.modelKey)!]!.declaration;
  }

  private graph(stage: ModelStage): GraphInfo {
    return this.visible[this.modelIndex.get(stage.modelKey)!]![stage.subgraph]!;
  }

  /** The method graph of that name, if the servable declares one. */
  method(name: string): MethodGraph | undefined {
    return this.methods.get(name);
  }

  methodNames(): string[] {
    return [...this.methods.keys()];
  }

  /** Methods with their inputs; where an input feeds a model directly, its model dtype and dims. */
  describe(): MethodInfo[] {
    return [...this.methods.values()].map((m) => this.describeMethod(m));
  }

  /**
   * A method's signature: each input's declared dtype and per-instance dims
   * (`register.method(name, { inputs })`); where an input feeds a model directly, the model's
   * dtype and dims fill what the declaration leaves out (load checked that the two agree).
   * Made once per method: every request's lookup asks for it.
   */
  describeMethod(m: MethodGraph): MethodInfo {
    let info = this.infos.get(m);
    if (!info) {
      info = {
        name: m.name,
        inputs: m.inputs.map((name, i) => {
          const declared = m.declaredInputs[i] ?? {};
          for (const s of m.stages) {
            const k = s.args.findIndex((a) => a.stage === 0 && a.output === i);
            if (k >= 0 && s.kind === 'model') {
              const model = this.graph(s).inputs[k]!;
              return { name, dtype: declared.dtype ?? model.dtype, dims: declared.dims ?? model.dims };
            }
          }
          return { name, ...declared };
        }),
        outputs: m.outputs,
        layout: this.layoutOf(m),
        ...((this.statefulOf.get(m)?.length ?? 0) > 0 ? { sequence: true } : {}),
        ...(streamStage(m) ? { stream: true } : {}),
      };
      this.infos.set(m, info);
    }
    return info;
  }

  /** See MethodLayout (engine/inference.ts): which tensors carry the batch dim, and their per-instance types. */
  private layoutOf(m: MethodGraph): MethodLayout {
    const batched = m.stages.some((s) => s.kind === 'model' && this.declarationOf(s).withBatchDim);
    const fromModel = (value: ValueInfo, withBatch: boolean): TensorLayout => ({
      dtype: value.dtype,
      dims: withBatch ? value.dims.slice(1) : value.dims,
      batched,
    });
    const inputs = m.inputs.map((_, i): TensorLayout => {
      const declared = m.declaredInputs[i] ?? {};
      for (const s of m.stages) {
        const k = s.args.findIndex((a) => a.stage === 0 && a.output === i);
        if (k >= 0 && s.kind === 'model') {
          const withBatch = this.batchedInput(s, k);
          const model = fromModel(this.graph(s).inputs[k]!, withBatch);
          return { ...model, ...declared, batched: batched && withBatch };
        }
      }
      return { ...declared, batched };
    });
    const outputs = m.returns.map((ref): TensorLayout => {
      if (ref.stage === 0) return { ...inputs[ref.output]!, batched };
      const s = m.stages[ref.stage - 1]!;
      if (s.kind !== 'model') return { batched };
      return fromModel(this.graph(s).outputs[ref.output]!, this.declarationOf(s).withBatchDim);
    });
    return { batched, inputs, outputs };
  }

  /** Can serve now: not stopping, and a device actor is live (or the servable has no models). */
  get ready(): boolean {
    return !this.stopped && (!this.hasModels || this.group.liveCount > 0);
  }

  /** Live figures: what the metrics gauges read, and the scheduler's batch counters (tests, operators). */
  get stats(): RuntimeStats {
    const scheduler = this.scheduler as ModelScheduler | undefined; // unset while create() loads the devices
    return {
      name: this.name,
      version: this.version,
      inflight: this.inflight,
      queued: scheduler?.queued ?? 0,
      restarts: this.group.restarts,
      liveActors: this.group.liveCount,
      ...this.sequenceFigures(),
      ...(scheduler?.stats ?? NO_BATCHES),
    };
  }

  private sequenceFigures(): { liveSequences: number; sequencesStarted: number; sequencesExpired: number } {
    let liveSequences = 0;
    let sequencesStarted = 0;
    let sequencesExpired = 0;
    for (const r of this.sequences.values()) {
      liveSequences += r.size;
      sequencesStarted += r.started;
      sequencesExpired += r.expired;
    }
    return { liveSequences, sequencesStarted, sequencesExpired };
  }

  /** Local device actors, for fault tests and operators. */
  deviceHandles(): DeviceHandle[] {
    return this.group.devices().filter((d): d is DeviceHandle => d instanceof DeviceHandle);
  }

  /** Runs method `m` (one of this servable's, resolved by the facade) on a request's instances. */
  inferEach(m: MethodGraph, instances: readonly unknown[], options: InferOptions = {}): Promise<InstanceOutcome[]> {
    // One promise per request, settled by whichever comes first: the work, the deadline
    // timer, the client's cancellation or stop() (cheaper than racing extra promises).
    return new Promise<InstanceOutcome[]>((resolve, reject) => {
      const request = this.openRequest(m, instances, options, reject);
      if (request.ctx.done) return;
      this.execute(m, instances, request.ctx).then(
        (outcomes) => {
          if (request.finish()) resolve(outcomes);
        },
        (err: unknown) => {
          if (request.finish()) reject(err);
        },
      );
    });
  }

  /**
   * Runs method `m` and hands out its results as events (StreamEvent): a streaming method's
   * partial results as its stream stage yields them, any other method's outcome per instance.
   * Throws now for whole-request problems (as inferEach rejects). The request lasts until every
   * instance finished, its deadline, its signal, or the reader's `return()` (which stops the
   * stream stage's generators at their next step).
   */
  inferStream(m: MethodGraph, instances: readonly unknown[], options: InferOptions = {}): AsyncIterableIterator<StreamEvent> {
    let request: OpenRequest | undefined;
    const events = new StreamEvents(Array.isArray(instances) ? instances.length : 0, () => request?.ctx.cutOff(new ServingError('E_CANCELLED', 'the stream was closed by its reader')));
    request = this.openRequest(m, instances, options, (err) => events.abort(err));
    const { ctx } = request;
    if (ctx.done) return events;
    const stage = streamStage(m);
    const work = stage ? this.streamInstances(m, stage, instances, ctx, events) : this.execute(m, instances, ctx).then((outcomes) => outcomes.forEach((o, i) => this.finishInstance(events, i, o)));
    work.then(
      () => request.finish(),
      (err: unknown) => {
        if (request.finish()) events.abort(toServingError(err));
      },
    );
    return events;
  }

  private finishInstance(events: StreamEvents, index: number, outcome: InstanceOutcome): void {
    if (outcome instanceof ServingError) return events.finish(index, outcome);
    events.outputs(index, outcome);
    events.finish(index);
  }

  /**
   * Admits a request (or throws: stopping, no instances, bad deadline or parameters, overload,
   * sequence refused) and tracks it until `finish()`, or until it ends early: its deadline,
   * its signal, or stop() call `ended` with the error (at once when the signal is already aborted).
   */
  private openRequest(m: MethodGraph, instances: readonly unknown[], options: InferOptions, ended: (err: ServingError) => void): OpenRequest {
    if (this.stopped) throw new ServingError('E_STOPPED', `servable '${this.name}' is stopping`);
    if (!Array.isArray(instances) || instances.length === 0) {
      throw new ServingError('E_NO_INSTANCES', 'the request holds no instances');
    }
    const deadlineMs = options.deadlineMs ?? this.start.defaultDeadlineMs;
    if (!(deadlineMs > 0) || !Number.isFinite(deadlineMs)) {
      throw new ServingError('E_INVALID_ARGUMENT', `deadlineMs must be a positive number, got ${deadlineMs}`);
    }
    if (options.parameters !== undefined) checkParameters(options.parameters);
    if (this.inflight >= this.start.maxQueuedRequests) {
      throw new ServingError(
        'E_OVERLOADED',
        `servable '${this.name}' has ${this.inflight} requests in flight, the limit is ${this.start.maxQueuedRequests}; retry later`,
      );
    }
    const sequences = this.admitSequences(m, options);
    this.inflight++;
    const signal = options.signal;
    const ctx: RequestCtx = {
      done: false,
      cutOff: (err) => {
        if (end()) ended(err);
      },
      ...(sequences ? { sequences } : {}),
      ...(options.parameters ? { parameters: options.parameters } : {}),
    };
    this.open.add(ctx);
    const end = (): boolean => {
      if (ctx.done) return false;
      ctx.done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.inflight--;
      this.open.delete(ctx);
      ctx.ended?.cancel();
      if (sequences) for (const a of sequences.values()) a.sequence.registry.requestEnded(a);
      return true;
    };
    const onAbort = (): void => ctx.cutOff(new ServingError('E_CANCELLED', 'the request was cancelled by its client'));
    const timer = setTimeout(() => ctx.cutOff(new ServingError('E_DEADLINE_EXCEEDED', `the request did not complete within its deadline of ${deadlineMs} ms`)), deadlineMs);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return { ctx, finish: end };
  }

  private async execute(m: MethodGraph, instances: readonly unknown[], ctx: RequestCtx): Promise<InstanceOutcome[]> {
    const { values, errors } = await this.executeStages(m, instances, ctx, m.stages.length);
    return instances.map((_, i) => {
      if (errors[i]) return errors[i];
      const out: Instance = {};
      m.outputs.forEach((name, k) => {
        out[name] = valuesOf(values[i]!, [m.returns[k]!])[0]!;
      });
      return out;
    });
  }

  /**
   * Runs the first `count` stages of `m` on the instances; values[i][stage] = that stage's
   * outputs for instance i (stage 0 = method inputs), errors[i] = why instance i stopped.
   */
  private async executeStages(m: MethodGraph, instances: readonly unknown[], ctx: RequestCtx, count: number): Promise<{ values: Tensor[][][]; errors: (ServingError | undefined)[] }> {
    const n = instances.length;
    const errors = new Array<ServingError | undefined>(n).fill(undefined);
    const values: Tensor[][][] = instances.map((inst, i) => {
      try {
        return [this.methodInputs(m, inst)];
      } catch (err) {
        errors[i] = toServingError(err, 'E_INVALID_ARGUMENT');
        return [];
      }
    });
    for (let s = 0; s < count; s++) {
      const stage = m.stages[s]!;
      const live = [...Array(n).keys()].filter((i) => !errors[i]);
      if (live.length === 0) break;
      const results = await this.runStage(stage, live.map((i) => valuesOf(values[i]!, stage.args)), ctx, m.inputs);
      live.forEach((i, k) => {
        const r = results[k]!;
        if (r instanceof ServingError) errors[i] = r;
        else values[i]![s + 1] = r;
      });
      if (ctx.done) break;
    }
    return { values, errors };
  }

  /**
   * A streaming method's instances: the stages before the stream stage run as usual, then each
   * instance's generator streams its partial results into `events`, named as the method's outputs.
   */
  private async streamInstances(m: MethodGraph, stage: FunctionStage, instances: readonly unknown[], ctx: RequestCtx, events: StreamEvents): Promise<void> {
    const { values, errors } = await this.executeStages(m, instances, ctx, m.stages.length - 1);
    const runs: Promise<void>[] = [];
    instances.forEach((_, i) => {
      const failed = errors[i];
      if (failed || ctx.done) return events.finish(i, failed);
      let run: StreamRun | undefined = undefined;
      const taken = (): void => run?.consumed(1);
      const { options, close } = this.stageOptions(ctx);
      run = this.stagePool!.runStream(this.config.configPath, stage, valuesOf(values[i]!, stage.args), options, (partial) => {
        const out: Instance = {};
        m.outputs.forEach((name, k) => {
          out[name] = partial[m.returns[k]!.output]!;
        });
        events.outputs(i, out, taken);
      });
      runs.push(
        run.done.then((err) => {
          close();
          events.finish(i, err);
        }),
      );
    });
    await Promise.all(runs);
  }

  /** Error-message labels of a method's inputs, built once per method rather than per request. */
  private methodInputLabels(m: MethodGraph): readonly string[] {
    let labels = this.methodInputLabelCache.get(m);
    if (!labels) {
      labels = m.inputs.map((name) => `method '${m.name}' input '${name}'`);
      this.methodInputLabelCache.set(m, labels);
    }
    return labels;
  }

  private methodInputs(m: MethodGraph, inst: unknown): Tensor[] {
    if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) {
      throw new ServingError('E_INVALID_ARGUMENT', 'an instance must be an object of named input tensors');
    }
    const record = inst as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!m.inputs.includes(key)) {
        throw new ServingError('E_EXTRA_INPUT', `method '${m.name}' has no input '${key}' (inputs: ${m.inputs.join(', ')})`);
      }
    }
    return m.inputs.map((name, i) => {
      if (!Object.hasOwn(record, name) || record[name] === undefined) {
        throw new ServingError('E_MISSING_INPUT', `method '${m.name}' needs input '${name}' (inputs: ${m.inputs.join(', ')})`);
      }
      const t = checkTensor(record[name], `input '${name}'`);
      const declared = m.declaredInputs[i];
      if (!declared) return t;
      // every transport and the library API come through here: one conversion for all
      const where = this.methodInputLabels(m)[i]!;
      checkDeclared(t, declared, where);
      return declared.dtype === undefined || !isNumericDType(declared.dtype) ? t : castTensor(t, declared.dtype, where);
    });
  }

  private async runStage(
    stage: Stage,
    args: Tensor[][],
    ctx: RequestCtx,
    inputNames: readonly string[],
  ): Promise<(Tensor[] | ServingError)[]> {
    if (stage.kind === 'model') {
      const model = this.modelIndex.get(stage.modelKey)!;
      let labels = this.inputLabels.get(stage);
      if (!labels) {
        labels = stage.args.map((a) => (a.stage === 0 ? `method input '${inputNames[a.output]}'` : undefined));
        this.inputLabels.set(stage, labels);
      }
      const named = labels;
      const seq = ctx.sequences?.get(model);
      return Promise.all(args.map((a, k) => this.scheduler.submit(model, stage.subgraph, a, ctx, named, seq && stepOf(seq, k, args.length)).catch(toServingError)));
    }
    if (stage.stream) return Promise.all(args.map((a) => this.collectStream(stage, a, ctx)));
    const chunk = stage.batchSize && stage.batchSize > 0 ? stage.batchSize : args.length;
    const parts: Promise<(Tensor[] | ServingError)[]>[] = [];
    const { options, close } = this.stageOptions(ctx);
    try {
      for (let i = 0; i < args.length; i += chunk) {
        parts.push(this.stagePool!.run(this.config.configPath, stage, args.slice(i, i + chunk), options));
      }
      return (await Promise.all(parts)).flat();
    } finally {
      close();
    }
  }

  /**
   * What stage tasks of request `ctx` run with: their model.call path, the request's end
   * signal, its parameters. `close()` once the tasks have ended: it ends the sequences their
   * model calls started and left open (modelCaller).
   */
  private stageOptions(ctx: RequestCtx): { readonly options: StreamRunOptions; readonly close: () => void } {
    const calls = this.hasModels ? this.modelCaller(ctx) : undefined;
    const requestEnded = (ctx.ended ??= new Cancellation());
    return { options: { callModel: calls?.caller, requestEnded, parameters: ctx.parameters }, close: () => calls?.close() };
  }

  /** A unary call's stream stage: the instance's partial results, joined (engine/stream-results.ts). */
  private async collectStream(stage: FunctionStage, inputs: Tensor[], ctx: RequestCtx): Promise<Tensor[] | ServingError> {
    const partials: Tensor[][] = [];
    const { options, close } = this.stageOptions(ctx);
    let run: StreamRun | undefined = undefined;
    run = this.stagePool!.runStream(this.config.configPath, stage, inputs, options, (partial) => {
      partials.push(partial);
      run?.consumed(1);
    });
    let failed: ServingError | undefined;
    try {
      failed = await run.done;
    } finally {
      close();
    }
    if (failed) return failed;
    try {
      return joinPartials(partials, stage.outputsCount, stage.tag);
    } catch (err) {
      return toServingError(err, 'E_STAGE_FAILED');
    }
  }

  /**
   * The `model.call` side of a request's stage tasks (stage-model-calls.ts ModelCaller). The
   * sequences its calls start are ended when the stage-function instance that started them
   * closes its scope, and at the latest by `close()` (the stage's tasks have ended) or when the
   * request ends: a stage function cannot leave state behind.
   */
  private modelCaller(ctx: RequestCtx): { caller: ModelCaller; close(): void } {
    const started = new Map<string, Set<Sequence>>();
    const endAll = (): void => {
      for (const set of started.values()) for (const s of set) s.registry.close(s);
      started.clear();
    };
    const ended = (ctx.ended ??= new Cancellation());
    ended.addEventListener('abort', endAll);
    const control = (c: ModelSequenceControl): Promise<void> => {
      try {
        if (c.kind === 'model.closeScope') {
          for (const s of started.get(c.scope) ?? []) s.registry.close(s);
          started.delete(c.scope);
        } else {
          this.registryOf(c.modelKey, 'endSequence').closeId(c.sequenceId);
        }
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(toServingError(err));
      }
    };
    const caller = Object.assign((req: ModelCall) => this.callModel(req, ctx, started), { control });
    return {
      caller,
      close: () => {
        ended.removeEventListener('abort', endAll);
        endAll();
      },
    };
  }

  /** The live sequences of stateful model `modelKey`; E_STAGE_FAILED for an undeclared or stateless model. */
  private registryOf(modelKey: string, what: string): SequenceRegistry {
    const model = this.modelIndex.get(modelKey);
    if (model === undefined) throw new ServingError('E_STAGE_FAILED', `model.${what}: model '${modelKey}' is not declared`);
    const registry = this.sequences.get(model);
    if (!registry) throw new ServingError('E_STAGE_FAILED', `model.${what}: model '${modelKey}' keeps no state (declareModel without sequence): it takes no sequence`);
    return registry;
  }

  /**
   * `model.call` from a stage function of a request. A stateful model's call is a step of the
   * sequence it names (each instance one step, in order), admitted like a request's steps;
   * `started` collects, per stage-function scope, the sequences it starts.
   */
  private async callModel(req: ModelCall, ctx: RequestCtx, started: Map<string, Set<Sequence>>): Promise<Tensor[][]> {
    const model = this.modelIndex.get(req.modelKey);
    if (model === undefined) throw new ServingError('E_STAGE_FAILED', `model.call: model '${req.modelKey}' is not declared`);
    if (ctx.done) throw new ServingError('E_DEADLINE_EXCEEDED', 'model.call after the request ended');
    const n = req.instances.length;
    if (!this.sequences.has(model)) {
      if (req.sequence) this.registryOf(req.modelKey, 'call'); // refuses, saying why
      return this.untilEnded(ctx, Promise.all(req.instances.map((inst) => this.scheduler.submit(model, req.subgraph, inst as Tensor[], ctx))));
    }
    if (!req.sequence) {
      throw new ServingError('E_STAGE_FAILED', `model.call: model '${req.modelKey}' is stateful: a call names its sequence (model.call(inputs, { sequence: { id, start } }))`);
    }
    const admission = this.sequences.get(model)!.admit(req.sequence, 'call');
    if (admission.start) {
      const key = req.scope ?? '';
      let set = started.get(key);
      if (!set) started.set(key, (set = new Set()));
      set.add(admission.sequence);
    }
    // Every step settles before the admission ends (a queued step keeps its sequence alive).
    const steps = Promise.all(
      req.instances.map((inst, k) => this.scheduler.submit(model, req.subgraph, inst as Tensor[], ctx, undefined, stepOf(admission, k, n)).catch(toServingError)),
    );
    let outcomes: (Tensor[] | ServingError)[];
    try {
      outcomes = await this.untilEnded(ctx, steps);
    } finally {
      admission.sequence.registry.requestEnded(admission);
    }
    const failed = outcomes.find((o): o is ServingError => o instanceof ServingError);
    if (failed) throw failed;
    return outcomes as Tensor[][];
  }

  /**
   * `work`, or a rejection once the request ends first: the scheduler drops the queued tasks of
   * an ended request without answering them, and a stage function must not wait for them.
   */
  private untilEnded<T>(ctx: RequestCtx, work: Promise<T>): Promise<T> {
    const ended = (ctx.ended ??= new Cancellation());
    return new Promise<T>((resolve, reject) => {
      const onEnd = (): void => reject(new ServingError('E_DEADLINE_EXCEEDED', 'model.call: the request ended before the model answered'));
      ended.addEventListener('abort', onEnd);
      work.then(resolve, reject).finally(() => ended.removeEventListener('abort', onEnd));
    });
  }

  /**
   * Graceful stop: takes no new requests, waits up to `timeoutMs` for the admitted ones and for
   * the stage tasks they started, then stops. What is still running then is answered E_STOPPED.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopped = true;
    const deadline = performance.now() + timeoutMs;
    await waitUntil(() => this.inflight === 0, deadline);
    if (this.inflight > 0) return this.stop();
    this.scheduler?.close(this.stoppedError());
    for (const r of this.sequences.values()) r.clear();
    await Promise.all([this.group.stop(), this.stagePool?.drain(Math.max(0, deadline - performance.now()))]);
  }

  /**
   * Stops now: every request still open is answered E_STOPPED, queued model work too, then the
   * device actors and the stage threads end (stage functions in flight are cut off).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const err = this.stoppedError();
    for (const ctx of [...this.open]) ctx.cutOff(err);
    this.scheduler?.close(err);
    for (const r of this.sequences.values()) r.clear();
    await Promise.all([this.group.stop(), this.stagePool?.stop()]);
  }

  private stoppedError(): ServingError {
    return new ServingError('E_STOPPED', `servable '${this.name}' version ${this.version} is stopping`);
  }
}


/** Each instance of a request (or call) is one step of its sequence, in order: the first starts it, the last ends it. */
function stepOf(a: SequenceAdmission, k: number, n: number): SequenceStep {
  return { sequence: a.sequence, start: a.start && k === 0, end: a.end && k === n - 1 };
}

/** A graph as methods see it: the state inputs and outputs of a stateful model left out (the device actor feeds them). */
function withoutState(g: GraphInfo, state: readonly { readonly input: string; readonly output: string }[] | undefined): GraphInfo {
  if (!state) return g;
  return {
    inputs: g.inputs.filter((v) => !state.some((s) => s.input === v.name)),
    outputs: g.outputs.filter((v) => !state.some((s) => s.output === v.name)),
  };
}

/** The tensors `refs` name in one instance's stage values. */
function valuesOf(values: readonly Tensor[][], refs: readonly ValueRef[]): Tensor[] {
  return refs.map((r) => values[r.stage]![r.output]!);
}

/** Request parameters are a plain object of strings, numbers and booleans (E_INVALID_ARGUMENT otherwise). */
function checkParameters(parameters: unknown): void {
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    throw new ServingError('E_INVALID_ARGUMENT', 'parameters must be an object of strings, numbers and booleans');
  }
  for (const [key, value] of Object.entries(parameters)) {
    if (!isParameterValue(value)) {
      throw new ServingError('E_INVALID_ARGUMENT', `parameter '${key}' must be a string, a finite number or a boolean, got ${value === null ? 'null' : typeof value}`);
    }
  }
}
