/**
 * The coordinator of a distributed servable: listens on the distributed address for the
 * agents' rank processes (the Coordinator service of actorserve_distributed.proto), keeps each
 * rank's registration alive by heartbeat, and presents the ranks to the runtime as one device
 * (`DistributedDevice`) whose batches go to every rank at once and whose outputs are the ranks'
 * outputs combined by the declared rule (engine/distributed.ts).
 *
 * Better than MindSpore's (PROTOCOLS.md §6.4): a rank that fails (its process dies, its
 * connection drops, a predict times out, its heartbeat stops) does not stop the servable. The
 * rank is marked lost, the batches in flight fail with an explicit error, new requests are
 * refused at once with E_UNAVAILABLE naming the missing ranks, readiness turns false; when the
 * rank registers again (its start-up process restarts it, or a heartbeat finds it was dropped)
 * the servable serves again.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { type CombineRule, type RankOutput, combineRankOutputs } from '../engine/distributed.js';
import { ServingError } from '../engine/errors.js';
import type { RankTable } from '../engine/rank-table.js';
import type { SSLConfig } from '../engine/ssl-config.js';
import type { BatchInput, BatchOutput, BatchResult, Device, DevicePool } from './device.js';
import type { DeviceGraphs, GraphInfo, ValueInfo } from './protocol.js';
import {
  AGENT_PROTOCOL_VERSION,
  type AcquireConfigReply,
  type AcquireConfigRequest,
  CHANNEL_OPTIONS,
  type ExitReply,
  type ExitRequest,
  type HeartbeatReply,
  type HeartbeatRequest,
  type PredictReply,
  type RegisterReply,
  type WireTensor,
  arrayToWire,
  type RegisterRequest,
  agentProtos,
  describeValue,
  graphFromWire,
  inputToWire,
  refusal,
  wireToArray,
} from './agent-wire.js';
import { RankLink } from './agent-link.js';
import { type AgentCredentials, agentCredentials } from './agent-tls.js';

export interface CoordinatorOptions {
  /** host:port the Coordinator service listens on (port 0: any free port). */
  readonly address: string;
  readonly servableName: string;
  readonly versionNumber: number;
  readonly rankSize: number;
  readonly stageSize: number;
  readonly combine: CombineRule;
  readonly concatAxis: number;
  readonly table: RankTable;
  /** How often ranks heartbeat. */
  readonly heartbeatIntervalMs: number;
  /** A rank silent this long is lost. */
  readonly heartbeatTimeoutMs: number;
  /** How long one rank may take to answer one batch before it counts as lost. */
  readonly predictTimeoutMs: number;
  /** TLS on the agent link (agent-tls.ts); plaintext when absent. */
  readonly sslConfig?: SSLConfig | undefined;
  readonly log: (line: string) => void;
}

interface RankSlot {
  readonly rankId: number;
  state: 'absent' | 'ready' | 'lost';
  address: string;
  pid: number;
  graphs: GraphInfo[];
  /** Its Agent client and batch stream while it is ready. */
  link: RankLink | undefined;
  lastBeat: number;
  /** Why it is not ready (for errors). */
  reason: string;
  registrations: number;
}

/** Batches in flight at once on the ranks (each rank's device actor holds two slots); a pipeline adds one per further stage. */
const SLOTS = 2;

export class AgentCoordinator {
  private readonly server = new grpc.Server(CHANNEL_OPTIONS);
  private readonly ranks: RankSlot[];
  private readonly session = randomUUID();
  private sweeper: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly waiters = new Set<{ done(): void; fail(err: ServingError): void }>();
  /** Called when the ranks' readiness changes (the scheduler may dispatch again, or must fail its queue). */
  onChange: () => void = () => undefined;
  /** The port the Coordinator service listens on. */
  port = 0;
  /** Registrations after the first full set (rank processes that came back). */
  reregistrations = 0;
  private everAllReady = false;
  private combined: GraphInfo | undefined;
  /** The last batch's id (ids count up over every rank's stream). */
  private batchId = 0;

  private constructor(
    readonly options: CoordinatorOptions,
    private readonly credentials: AgentCredentials,
  ) {
    this.ranks = Array.from({ length: options.rankSize }, (_, rankId) => ({
      rankId,
      state: 'absent',
      address: '',
      pid: 0,
      graphs: [],
      link: undefined,
      lastBeat: 0,
      reason: 'has not registered yet',
      registrations: 0,
    }));
  }

  /** Starts listening; rejects with a clear error when the address cannot be bound. */
  static async start(options: CoordinatorOptions): Promise<AgentCoordinator> {
    const credentials = agentCredentials(options.sslConfig, `distributed servable '${options.servableName}': sslConfig`);
    const c = new AgentCoordinator(options, credentials);
    const { coordinator } = agentProtos();
    c.server.addService(coordinator, {
      AcquireConfig: c.handle((r: AcquireConfigRequest) => c.acquireConfig(r)),
      Register: c.handle((r: RegisterRequest) => c.register(r)),
      Heartbeat: c.handle((r: HeartbeatRequest) => c.heartbeat(r)),
      Exit: c.handle((r: ExitRequest) => c.exit(r)),
    });
    c.port = await new Promise<number>((resolve, reject) => {
      c.server.bindAsync(options.address, credentials.server, (err, port) => {
        if (err) reject(new ServingError('E_LOAD_FAILED', `distributed servable '${options.servableName}': cannot listen for agents on ${options.address}: ${err.message}`));
        else resolve(port);
      });
    });
    c.sweeper = setInterval(() => c.sweep(), Math.max(10, Math.min(options.heartbeatIntervalMs, options.heartbeatTimeoutMs / 4)));
    c.sweeper.unref();
    return c;
  }

  private handle<Req, Rep>(fn: (request: Req) => Rep): grpc.handleUnaryCall<Req, Rep> {
    return (call, callback) => {
      try {
        callback(null, fn(call.request));
      } catch (err) {
        callback(err instanceof ServingError ? refusal(err.message) : { code: grpc.status.INTERNAL, details: String(err) });
      }
    };
  }

  private label(): string {
    return `distributed servable '${this.options.servableName}'`;
  }

  private checkVersion(version: number, what: string): void {
    if (version !== AGENT_PROTOCOL_VERSION) {
      throw new ServingError(
        'E_CONFIG_INVALID',
        `${what}: agent protocol version mismatch: the coordinator speaks version ${AGENT_PROTOCOL_VERSION}, the agent version ${version} (run agents and server from the same actorserve release)`,
      );
    }
  }

  private acquireConfig(r: AcquireConfigRequest): AcquireConfigReply {
    this.checkVersion(r.protocol_version, this.label());
    const o = this.options;
    return {
      protocol_version: AGENT_PROTOCOL_VERSION,
      servable_name: o.servableName,
      version_number: o.versionNumber,
      rank_size: o.rankSize,
      stage_size: o.stageSize,
      ranks: o.table.ranks.map((e) => ({ rank_id: e.rankId, server_id: e.serverId, device_id: e.deviceId })),
      heartbeat_interval_ms: o.heartbeatIntervalMs,
      heartbeat_timeout_ms: o.heartbeatTimeoutMs,
    };
  }

  private register(r: RegisterRequest): RegisterReply {
    const where = `${this.label()}: rank ${r.rank_id} (agent at ${r.address})`;
    this.checkVersion(r.protocol_version, where);
    if (this.stopped) throw new ServingError('E_STOPPED', `${this.label()} is stopping`);
    const slot = this.ranks[r.rank_id];
    if (!slot) throw new ServingError('E_CONFIG_INVALID', `${where}: rank id ${r.rank_id} is beyond the rank size ${this.options.rankSize} (ranks 0…${this.options.rankSize - 1})`);
    if (slot.state === 'ready' && slot.address !== r.address) {
      throw new ServingError('E_CONFIG_INVALID', `${where}: rank ${r.rank_id} is already registered by the agent at ${slot.address} (pid ${slot.pid}); duplicate rank`);
    }
    const graphs = r.graphs.map(graphFromWire);
    if (graphs.length === 0) throw new ServingError('E_CONFIG_INVALID', `${where}: registers no graph`);
    this.checkShards(r.rank_id, graphs, where);
    this.checkStages(r.rank_id, graphs, where);
    slot.link?.close(`rank ${r.rank_id} registered again`);
    const link: RankLink = new RankLink(r.address, this.credentials.channel, (reason) => {
      if (slot.link === link) this.lose(slot, reason);
    });
    slot.link = link;
    slot.state = 'ready';
    slot.address = r.address;
    slot.pid = r.pid;
    slot.graphs = graphs;
    slot.lastBeat = performance.now();
    slot.reason = '';
    slot.registrations++;
    if (this.everAllReady) this.reregistrations++;
    this.options.log(`${this.label()}: rank ${r.rank_id} registered from ${r.address} (pid ${r.pid}); ${this.readyCount} of ${this.options.rankSize} ranks ready`);
    if (this.allReady) {
      this.everAllReady = true;
      for (const w of [...this.waiters]) w.done();
    }
    this.onChange();
    return { session: this.session };
  }

  /** Ranks per pipeline stage: stage s is ranks s·k … s·k + k − 1. */
  private get perStage(): number {
    return this.options.rankSize / this.options.stageSize;
  }

  private stageRanks(stage: number): RankSlot[] {
    return this.ranks.slice(stage * this.perStage, (stage + 1) * this.perStage);
  }

  /**
   * Every rank must have the same graph count as every other registered rank, and the same
   * inputs as the other ranks of its stage (they all get the same inputs); outputs must agree
   * in count and dtype within the stage (combine).
   */
  private checkShards(rankId: number, graphs: GraphInfo[], where: string): void {
    const any = this.ranks.find((s) => s.rankId !== rankId && s.graphs.length > 0);
    if (any && graphs.length !== any.graphs.length) {
      throw new ServingError('E_CONFIG_INVALID', `${where}: loaded ${graphs.length} graphs, rank ${any.rankId} ${any.graphs.length}; every rank needs the same subgraphs`);
    }
    const stage = Math.floor(rankId / this.perStage);
    const other = this.stageRanks(stage).find((s) => s.rankId !== rankId && s.graphs.length > 0);
    if (!other) return;
    const ref = other.graphs;
    graphs.forEach((g, sub) => {
      const r = ref[sub]!;
      const sig = (vs: readonly ValueInfo[]): string => vs.map(describeValue).join(', ');
      if (sig(g.inputs) !== sig(r.inputs)) {
        throw new ServingError(
          'E_CONFIG_INVALID',
          `${where}: mismatched shard: graph ${sub} takes inputs (${sig(g.inputs)}), rank ${other.rankId} takes (${sig(r.inputs)}); every rank of a stage needs the same inputs`,
        );
      }
      const outs = (vs: readonly ValueInfo[]): string => vs.map((v) => v.dtype).join(', ');
      if (this.options.combine !== 'last' && outs(g.outputs) !== outs(r.outputs)) {
        throw new ServingError(
          'E_CONFIG_INVALID',
          `${where}: mismatched shard: graph ${sub} outputs (${outs(g.outputs)}), rank ${other.rankId} (${outs(r.outputs)}); combine '${this.options.combine}' needs the same outputs on every rank`,
        );
      }
    });
  }

  /**
   * Stage s + 1 takes stage s's combined outputs, in order: as many inputs as stage s has
   * outputs, of the same dtypes (checked against any registered rank of the neighbouring stages).
   */
  private checkStages(rankId: number, graphs: GraphInfo[], where: string): void {
    const stage = Math.floor(rankId / this.perStage);
    const dtypes = (vs: readonly ValueInfo[]): string => vs.map((v) => v.dtype).join(', ');
    const registered = (s: number): RankSlot | undefined => (s < 0 || s >= this.options.stageSize ? undefined : this.stageRanks(s).find((slot) => slot.graphs.length > 0));
    const before = registered(stage - 1);
    const after = registered(stage + 1);
    const refuse = (detail: string): never => {
      throw new ServingError('E_CONFIG_INVALID', `${where}: mismatched stages: ${detail}; a stage takes the previous stage's outputs as its inputs, in order`);
    };
    graphs.forEach((g, sub) => {
      const given = before?.graphs[sub]?.outputs;
      if (before && given && dtypes(given) !== dtypes(g.inputs)) {
        refuse(`graph ${sub} of stage ${stage} takes inputs (${dtypes(g.inputs)}), stage ${stage - 1} (rank ${before.rankId}) gives outputs (${dtypes(given)})`);
      }
      const taken = after?.graphs[sub]?.inputs;
      if (after && taken && dtypes(g.outputs) !== dtypes(taken)) {
        refuse(`graph ${sub} of stage ${stage} gives outputs (${dtypes(g.outputs)}), stage ${stage + 1} (rank ${after.rankId}) takes inputs (${dtypes(taken)})`);
      }
    });
  }

  private heartbeat(r: HeartbeatRequest): HeartbeatReply {
    const slot = this.ranks[r.rank_id];
    const known = !this.stopped && r.session === this.session && slot?.state === 'ready' && slot.address === r.address;
    if (known) slot.lastBeat = performance.now();
    return { known };
  }

  private exit(r: ExitRequest): ExitReply {
    const slot = this.ranks[r.rank_id];
    if (slot && slot.address === r.address && slot.state === 'ready') this.lose(slot, `its agent left (${r.reason || 'no reason given'})`);
    return {};
  }

  private sweep(): void {
    const now = performance.now();
    for (const slot of this.ranks) {
      if (slot.state === 'ready' && now - slot.lastBeat > this.options.heartbeatTimeoutMs) {
        this.lose(slot, `sent no heartbeat for ${Math.round(now - slot.lastBeat)} ms (timeout ${this.options.heartbeatTimeoutMs} ms)`);
      }
    }
  }

  /** Marks a rank lost: the servable is unavailable until it registers again. */
  lose(slot: RankSlot, reason: string): void {
    if (slot.state !== 'ready') return;
    slot.state = 'lost';
    slot.reason = `was lost: ${reason}`;
    slot.link?.close(reason);
    slot.link = undefined;
    this.options.log(`${this.label()}: rank ${slot.rankId} (agent at ${slot.address}, pid ${slot.pid}) ${slot.reason}; not serving until it registers again`);
    this.onChange();
  }

  get readyCount(): number {
    return this.ranks.filter((s) => s.state === 'ready').length;
  }

  get allReady(): boolean {
    return !this.stopped && this.ranks.every((s) => s.state === 'ready');
  }

  /** Why not every rank is ready: `rank 3 (agent at …) was lost: …; rank 5 has not registered yet`. */
  missing(): string {
    const gone = this.ranks.filter((s) => s.state !== 'ready');
    const parts = gone.slice(0, 4).map((s) => `rank ${s.rankId}${s.address ? ` (agent at ${s.address})` : ''} ${s.reason}`);
    if (gone.length > 4) parts.push(`and ${gone.length - 4} more`);
    return `${this.readyCount} of ${this.options.rankSize} ranks ready: ${parts.join('; ')}`;
  }

  /** Agents' ranks and their state (operators, tests). */
  rankStates(): { rankId: number; state: string; address: string; pid: number }[] {
    return this.ranks.map((s) => ({ rankId: s.rankId, state: s.state, address: s.address, pid: s.pid }));
  }

  /** Resolves once every rank registered; rejects after `timeoutMs` (0 = wait forever) naming the missing ranks, or when stopped. */
  waitAllReady(timeoutMs: number): Promise<void> {
    if (this.allReady) return Promise.resolve();
    if (this.stopped) return Promise.reject(new ServingError('E_STOPPED', `${this.label()} stopped before its agents registered`));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        done: (): void => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
        fail: (err: ServingError): void => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(err);
        },
      };
      this.waiters.add(waiter);
      if (timeoutMs > 0) {
        timer = setTimeout(
          () => waiter.fail(new ServingError('E_LOAD_FAILED', `${this.label()}: agents did not all register within ${timeoutMs / 1000} s (waitAgentsTimeInSeconds): ${this.missing()}`)),
          timeoutMs,
        );
      }
    });
  }

  /**
   * The graph the ranks make together: rank 0's inputs (stage 0's); the last stage's outputs
   * combined by the rule (for `concat`, the axis dim is the sum of the ranks' dims where all are
   * known).
   */
  graphs(): DeviceGraphs {
    if (this.combined) return [[this.combined]];
    const rank0 = this.ranks[0]!.graphs[0]!;
    const lastStage = this.stageRanks(this.options.stageSize - 1);
    const first = lastStage[0]!.graphs[0]!;
    const last = lastStage[lastStage.length - 1]!.graphs[0]!;
    const { combine, concatAxis } = this.options;
    let outputs = combine === 'last' ? last.outputs : first.outputs;
    if (combine === 'concat') {
      outputs = first.outputs.map((v, k) => {
        const axis = concatAxis < 0 ? concatAxis + v.dims.length : concatAxis;
        const dims = lastStage.map((s) => s.graphs[0]!.outputs[k]!.dims[axis]);
        const known = dims.every((d): d is number => typeof d === 'number' && d >= 0);
        return { ...v, dims: v.dims.map((d, i) => (i === axis ? (known ? dims.reduce((a, b) => a + b, 0) : -1) : d)) };
      });
    }
    this.combined = { inputs: rank0.inputs, outputs };
    return [[this.combined]];
  }

  /**
   * Runs one batch: stage 0's ranks get the batch's inputs, each further stage the previous
   * stage's combined outputs (in order: output k feeds input k); the last stage's combined
   * outputs are the batch's.
   */
  async predict(subgraph: number, inputs: readonly BatchInput[]): Promise<BatchOutput[]> {
    if (!this.allReady) throw new ServingError('E_UNAVAILABLE', `${this.label()} is not available: ${this.missing()}`);
    let tensors: WireTensor[] = inputs.map(inputToWire);
    for (let stage = 0; ; stage++) {
      const outputs = await this.runStage(stage, subgraph, tensors);
      if (stage === this.options.stageSize - 1) return outputs;
      tensors = outputs.map((o) => arrayToWire(o.dtype, o.dims, o.data));
    }
  }

  /**
   * Runs one stage of a batch on the stage's ranks and combines their outputs. The request is
   * encoded once and written to every rank's stream; one timer per stage: a rank that has not
   * answered within `predictTimeoutMs` is lost (which fails its batches).
   */
  private async runStage(stage: number, subgraph: number, tensors: WireTensor[]): Promise<RankOutput[]> {
    const ranks = this.stageRanks(stage);
    const id = ++this.batchId;
    const bytes = agentProtos().encodePredictRequest({ inputs: tensors, subgraph, id });
    const timer = setTimeout(() => {
      for (const slot of ranks) {
        if (slot.link?.waitsFor(id)) this.lose(slot, `did not answer a batch within ${this.options.predictTimeoutMs} ms`);
      }
    }, this.options.predictTimeoutMs);
    let replies: RankOutput[][];
    try {
      replies = await Promise.all(ranks.map((slot) => this.predictOn(slot, id, bytes)));
    } finally {
      clearTimeout(timer);
    }
    const last = this.options.stageSize - 1;
    const names = stage === last ? (this.combined?.outputs.map((v) => v.name) ?? []) : (ranks[0]!.graphs[subgraph]?.outputs.map((v) => v.name) ?? []);
    const counts = new Set(replies.map((r) => r.length));
    if (this.options.combine !== 'last' && counts.size > 1) {
      throw new ServingError('E_MODEL_FAILED', `${this.label()}: the ranks of stage ${stage} returned different numbers of outputs (${replies.map((r) => r.length).join(', ')})`);
    }
    const lastReply = replies[replies.length - 1]!;
    return lastReply.map((_, k) => combineRankOutputs(this.options.combine, this.options.concatAxis, replies.map((r) => r[k]!), names[k] ?? `#${k}`));
  }

  private async predictOn(slot: RankSlot, id: number, bytes: Buffer): Promise<RankOutput[]> {
    const link = slot.link;
    const where = `rank ${slot.rankId} (agent at ${slot.address})`;
    if (!link) throw new ServingError('E_UNAVAILABLE', `${this.label()}: ${where} ${slot.reason}`);
    let reply: PredictReply;
    try {
      reply = await link.send(id, bytes);
    } catch (err) {
      throw new ServingError('E_ACTOR_DIED', `${this.label()}: ${where} ${(err as Error).message}`);
    }
    if (reply.error) throw new ServingError('E_MODEL_FAILED', `${this.label()}: ${where}: ${reply.error}`);
    return reply.outputs.map((t, k) => wireToArray(t, `${where} output ${k}`));
  }

  /** Tells every registered rank to exit (MindSpore's MSAgent.Exit), then stops listening. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweeper);
    for (const w of [...this.waiters]) w.fail(new ServingError('E_STOPPED', `${this.label()} stopped before its agents registered`));
    await Promise.all(
      this.ranks.map(async (slot) => {
        const link = slot.link;
        slot.link = undefined;
        if (link && slot.state === 'ready') await link.exit({ rank_id: slot.rankId, address: slot.address, reason: 'the servable is stopping' }, 1000);
        link?.close(`${this.label()} is stopping`);
      }),
    );
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  /** The ranks as the runtime's device pool: one device standing for all of them. */
  pool(onCapacity: () => void): DevicePool {
    return new RankPool(this, onCapacity);
  }
}

/** The ranks as one Device: a batch goes to every rank; the combined outputs come back. */
class DistributedDevice implements Device {
  readonly deviceId = 0;
  readonly ready: Promise<DeviceGraphs>;
  outstanding = 0;
  completed = 0;

  constructor(
    private readonly coordinator: AgentCoordinator,
    private readonly slotFreed: () => void,
  ) {
    this.ready = Promise.resolve(coordinator.graphs());
  }

  get state(): 'ready' | 'dead' {
    return this.coordinator.allReady ? 'ready' : 'dead';
  }

  hasFreeSlot(): boolean {
    return this.coordinator.allReady && this.outstanding < SLOTS + this.coordinator.options.stageSize - 1;
  }

  async run(_model: number, subgraph: number, inputs: readonly BatchInput[]): Promise<BatchResult> {
    this.outstanding++;
    try {
      const outputs = await this.coordinator.predict(subgraph, inputs);
      this.completed++;
      return { outputs, release: () => undefined };
    } finally {
      this.outstanding--;
      this.slotFreed();
    }
  }

  async stop(): Promise<void> {
    await this.coordinator.stop();
  }
}

class RankPool implements DevicePool {
  private readonly device: DistributedDevice;
  private stopped = false;

  constructor(
    private readonly coordinator: AgentCoordinator,
    onCapacity: () => void,
  ) {
    this.device = new DistributedDevice(coordinator, onCapacity);
    coordinator.onChange = onCapacity;
  }

  get graphs(): DeviceGraphs {
    return this.coordinator.graphs();
  }

  /** Unavailable while a rank is missing: queued and new requests fail at once, naming it. */
  get available(): boolean {
    return !this.stopped && this.coordinator.allReady;
  }

  unavailableReason(): string {
    if (this.stopped) return `distributed servable '${this.coordinator.options.servableName}' is stopping`;
    return `distributed servable '${this.coordinator.options.servableName}' is not available: ${this.coordinator.missing()}`;
  }

  get liveCount(): number {
    return this.available ? 1 : 0;
  }

  get restarts(): number {
    return this.coordinator.reregistrations;
  }

  async start(): Promise<void> {
    // the coordinator waited for the ranks before the runtime was made
  }

  pick(): Device | undefined {
    return this.device.hasFreeSlot() ? this.device : undefined;
  }

  devices(): Device[] {
    return [this.device];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.device.stop();
  }
}
