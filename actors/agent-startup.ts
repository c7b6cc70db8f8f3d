/**
 * An agent host's start-up process (`distributed.startupAgents`, `actorserve agent`): asks the
 * coordinator for the rank table (AcquireConfig, retried while the coordinator is not up yet),
 * picks the ranks that run on this host, checks their model files, and forks one rank process
 * per local rank (agent-rank.ts). Resolves once every local rank registered with the
 * coordinator; a rank that fails to start fails the whole start-up with its error.
 *
 * Afterwards it watches its rank processes. Better than MindSpore's (which stops everything
 * when one agent dies): a rank process that dies is started again (backoff from 200 ms to 5 s,
 * given up after 5 failed starts in a row), and registers again, so the servable heals. Rank
 * processes that exit because the coordinator told them to, or because it stayed unreachable,
 * end the agents (`closed` resolves with the reason).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ServingError } from '../engine/errors.js';
import type { SSLConfig } from '../engine/ssl-config.js';
import {
  AGENT_PROTOCOL_VERSION,
  type AcquireConfigReply,
  type AcquireConfigRequest,
  COORDINATOR_CHANNEL_OPTIONS,
  RANK_EXIT,
  type RankMessage,
  type RankSettings,
  type WireRankEntry,
  agentProtos,
  grpcCode,
  unary,
} from './agent-wire.js';
import { agentCredentials, linkFailure, tlsFailure } from './agent-tls.js';

export interface StartupAgentsOptions {
  /** host:port of the coordinator (`distributedAddress` of `distributed.startServable`). */
  distributedAddress: string;
  /** One entry per local rank: its model file, or a list of files (subgraphs; same length for all). */
  modelFiles: readonly (string | readonly string[])[];
  /** One per local rank, checked readable (ONNX ranks have no communication groups: unused). */
  groupConfigFiles?: readonly string[];
  /** Local rank i listens on agentIp:(agentStartPort + i) (default 7000, at most 65528). */
  agentStartPort?: number;
  /** The address ranks listen on; with rankStart, or both absent (then the first rank-table host this machine can bind). */
  agentIp?: string;
  /** A rank of this host in the rank table (its server_id's ranks are this host's). */
  rankStart?: number;
  /** Key of encrypted model files (16, 24 or 32 bytes). */
  decKey?: Uint8Array;
  decMode?: 'AES-GCM' | 'AES-CBC';
  deviceType?: 'cpu' | 'cuda';
  intraOpThreads?: number;
  /** How long to keep trying to reach the coordinator (start-up, and once running) before giving up (default 60). */
  coordinatorRetrySeconds?: number;
  /**
   * TLS on the agent link, when the coordinator has an sslConfig: `customCa` verifies the
   * coordinator's certificate (the system's roots without it); `certificate` / `privateKey` are
   * what the ranks' Agent services present to the coordinator, which dials them, and what the
   * ranks present as clients when the coordinator verifies clients; `verifyClient` makes the
   * ranks require the coordinator's client certificate, chained to `customCa`.
   */
  sslConfig?: SSLConfig;
  /** Start a rank process again when it dies (default true). */
  restartRanks?: boolean;
  log?: (line: string) => void;
}

export interface AgentRankInfo {
  readonly rankId: number;
  readonly address: string;
  /** The rank process's pid now (it changes when the process is started again). */
  readonly pid: number;
  /** Times its process was started again. */
  readonly restarts: number;
}

export interface Agents {
  readonly ranks: readonly AgentRankInfo[];
  /** Resolves with the reason once every rank process ended (coordinator told them to, went away, or stop()). */
  readonly closed: Promise<string>;
  /** Stops every rank process (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const RANK_ENTRY = fileURLToPath(new URL('./agent-rank.js', import.meta.url));

function invalid(message: string): ServingError {
  return new ServingError('E_INVALID_ARGUMENT', `distributed.startupAgents: ${message}`);
}

/** AcquireConfig, retried every second while the coordinator is unreachable. */
async function acquireConfig(address: string, credentials: grpc.ChannelCredentials, tls: boolean, retryMs: number, log: (line: string) => void): Promise<AcquireConfigReply> {
  const client = new (agentProtos().CoordinatorClient)(address, credentials, COORDINATOR_CHANNEL_OPTIONS);
  const until = performance.now() + retryMs;
  let logged = false;
  try {
    for (;;) {
      try {
        return await unary<AcquireConfigRequest, AcquireConfigReply>(client, 'AcquireConfig', { protocol_version: AGENT_PROTOCOL_VERSION }, 1000);
      } catch (err) {
        if (grpcCode(err) === grpc.status.FAILED_PRECONDITION) throw invalid(`the coordinator at ${address} refused: ${(err as grpc.ServiceError).details}`);
        if (tlsFailure(err)) throw new ServingError('E_UNAVAILABLE', `distributed.startupAgents: cannot reach the coordinator at ${address}: ${linkFailure(err, tls)}`);
        if (performance.now() >= until) {
          throw new ServingError('E_UNAVAILABLE', `distributed.startupAgents: no coordinator answered at ${address} within ${retryMs / 1000} s (${linkFailure(err, tls)})`);
        }
        if (!logged) log(`waiting for the coordinator at ${address} ...`);
        logged = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    client.close();
  }
}

function canBind(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: ip, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** The rank-table entries this host runs, and the IP its ranks listen on. */
async function localRanks(ranks: readonly WireRankEntry[], o: StartupAgentsOptions, port: number): Promise<{ ip: string; mine: WireRankEntry[] }> {
  if ((o.agentIp === undefined) !== (o.rankStart === undefined)) throw invalid('agentIp and rankStart must be given together, or neither');
  if (o.rankStart !== undefined) {
    if (!Number.isInteger(o.rankStart) || o.rankStart < 0 || o.rankStart >= ranks.length) {
      throw invalid(`rankStart ${o.rankStart} must be a rank of the table (0…${ranks.length - 1})`);
    }
    const host = ranks[o.rankStart]!.server_id;
    return { ip: o.agentIp!, mine: ranks.filter((r) => r.server_id === host) };
  }
  const hosts = [...new Set(ranks.map((r) => r.server_id))];
  for (const host of hosts) if (await canBind(host, port)) return { ip: host, mine: ranks.filter((r) => r.server_id === host) };
  throw invalid(`this machine cannot listen on port ${port} of any rank-table host (${hosts.join(', ')}); give agentIp and rankStart, or free the port`);
}

/** Starts this host's ranks; resolves once all registered with the coordinator. */
export async function startupAgents(options: StartupAgentsOptions): Promise<Agents> {
  const o = options;
  const log = o.log ?? ((line: string) => void process.stderr.write(`[actorserve agent] ${line}\n`));
  if (typeof o.distributedAddress !== 'string' || o.distributedAddress === '') throw invalid('distributedAddress is required (host:port of the coordinator)');
  if (!Array.isArray(o.modelFiles) || o.modelFiles.length === 0) throw invalid('modelFiles must list one model file (or list of files) per local rank');
  const port = o.agentStartPort ?? 7000;
  if (!Number.isInteger(port) || port < 1 || port > 65528) throw invalid(`agentStartPort must be an integer in [1, 65528], got ${port}`);
  const files = o.modelFiles.map((f: string | readonly string[]) => (typeof f === 'string' ? [f] : [...f]).map((p) => path.resolve(p)));
  if (new Set(files.map((f) => f.length)).size > 1) throw invalid('every rank needs the same number of model files (subgraphs)');
  if (o.groupConfigFiles && o.groupConfigFiles.length !== files.length) {
    throw invalid(`groupConfigFiles holds ${o.groupConfigFiles.length} files for ${files.length} ranks`);
  }
  const retryMs = (o.coordinatorRetrySeconds ?? 60) * 1000;
  const sslConfig: SSLConfig | undefined = o.sslConfig && {
    ...o.sslConfig,
    certificate: path.resolve(o.sslConfig.certificate),
    privateKey: path.resolve(o.sslConfig.privateKey),
    ...(o.sslConfig.customCa !== undefined ? { customCa: path.resolve(o.sslConfig.customCa) } : {}),
  };
  const credentials = agentCredentials(sslConfig, 'distributed.startupAgents: sslConfig');

  const config = await acquireConfig(o.distributedAddress, credentials.channel, credentials.tls, retryMs, log);
  const { ip, mine } = await localRanks(config.ranks, o, port);
  if (mine.length !== files.length) {
    throw invalid(
      `the rank table puts ${mine.length} ranks on host '${mine[0]?.server_id}' (ranks ${mine.map((r) => r.rank_id).join(', ')}) but ${files.length} model files are given`,
    );
  }
  for (const [i, list] of files.entries()) {
    for (const file of list) {
      await access(file, constants.R_OK).catch(() => {
        throw invalid(`cannot access model file '${file}' of rank ${mine[i]!.rank_id}`);
      });
    }
    const group = o.groupConfigFiles?.[i];
    if (group !== undefined) {
      await access(path.resolve(group), constants.R_OK).catch(() => {
        throw invalid(`cannot access group config file '${group}' of rank ${mine[i]!.rank_id}`);
      });
    }
  }

  const settings = mine.map(
    (entry, i): RankSettings => ({
      coordinator: o.distributedAddress,
      rankId: entry.rank_id,
      deviceId: entry.device_id,
      address: `${ip}:${port + i}`,
      modelFiles: files[i]!,
      deviceType: o.deviceType ?? 'cpu',
      intraOpThreads: o.intraOpThreads ?? 1,
      heartbeatIntervalMs: config.heartbeat_interval_ms,
      coordinatorRetryMs: retryMs,
      ...(sslConfig ? { sslConfig } : {}),
      ...(o.decKey ? { decKey: Buffer.from(o.decKey).toString('hex'), decMode: o.decMode ?? 'AES-GCM' } : {}),
    }),
  );
  log(`servable '${config.servable_name}': starting ranks ${mine.map((r) => r.rank_id).join(', ')} on ${ip} (ports ${port}…${port + mine.length - 1})`);
  return new AgentSet(settings, o.restartRanks ?? true, log).start();
}

interface RankProcess {
  readonly settings: RankSettings;
  child: ChildProcess | undefined;
  restarts: number;
  failedStarts: number;
  registered: boolean;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
}

class AgentSet implements Agents {
  private readonly procs: RankProcess[];
  private stopping = false;
  /** Why the first rank ended for good (what `closed` reports). */
  private reason: string | undefined;
  private settleClosed!: (reason: string) => void;
  readonly closed: Promise<string>;

  constructor(
    settings: readonly RankSettings[],
    private readonly restartRanks: boolean,
    private readonly log: (line: string) => void,
  ) {
    this.procs = settings.map((s) => ({ settings: s, child: undefined, restarts: 0, failedStarts: 0, registered: false, timer: undefined, ended: false }));
    this.closed = new Promise((resolve) => (this.settleClosed = resolve));
  }

  get ranks(): AgentRankInfo[] {
    return this.procs.map((p) => ({ rankId: p.settings.rankId, address: p.settings.address, pid: p.child?.pid ?? 0, restarts: p.restarts }));
  }

  async start(): Promise<Agents> {
    try {
      await Promise.all(this.procs.map((p) => this.spawn(p)));
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** Forks a rank process; resolves once it registered, rejects with its error if it fails first. */
  private spawn(p: RankProcess): Promise<void> {
    const child = fork(RANK_ENTRY, [], {
      env: { ...process.env, ACTORSERVE_AGENT_RANK: JSON.stringify(p.settings) },
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    p.child = child;
    p.registered = false;
    return new Promise<void>((resolve, reject) => {
      let failure = '';
      child.on('message', (m: RankMessage) => {
        if (m.type === 'registered') {
          p.registered = true;
          p.failedStarts = 0;
          resolve();
        } else if (m.type === 'failed') {
          failure = m.error;
        }
      });
      child.on('exit', (code, signal) => {
        if (p.child === child) p.child = undefined;
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        reject(new ServingError('E_LOAD_FAILED', `rank ${p.settings.rankId} (${p.settings.address}) ${failure || how}`));
        this.onExit(p, code, how);
      });
    });
  }

  private onExit(p: RankProcess, code: number | null, how: string): void {
    if (this.stopping) return this.ended(p, 'stopped');
    if (code === RANK_EXIT.stopped) return this.ended(p, 'the coordinator stopped the servable');
    if (code === RANK_EXIT.coordinatorGone) return this.ended(p, 'the coordinator stayed unreachable');
    if (!this.restartRanks || !p.registered && p.restarts === 0) return this.ended(p, `rank ${p.settings.rankId} ${how}`);
    if (!p.registered) p.failedStarts++;
    if (p.failedStarts >= 5) {
      this.log(`rank ${p.settings.rankId} failed to start ${p.failedStarts} times in a row; giving it up`);
      return this.ended(p, `rank ${p.settings.rankId} failed to start again`);
    }
    const delay = Math.min(200 * 2 ** p.failedStarts, 5000);
    this.log(`rank ${p.settings.rankId} (pid gone) ${how}; starting it again in ${delay} ms`);
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (this.stopping) return this.ended(p, 'stopped');
      p.restarts++;
      this.spawn(p).catch(() => undefined); // its exit is handled above
    }, delay);
  }

  private ended(p: RankProcess, reason: string): void {
    p.ended = true;
    if (reason !== 'stopped') this.reason ??= reason;
    if (this.procs.every((q) => q.ended)) this.settleClosed(this.reason ?? reason);
    else if (!this.stopping && reason !== 'stopped') {
      // one rank gone for good ends the host's agents (its ranks cannot serve without it)
      this.log(`${reason}; stopping the other ranks of this host`);
      void this.stop();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.procs.map(async (p) => {
        clearTimeout(p.timer);
        const child = p.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return this.ended(p, 'stopped');
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(force);
      }),
    );
  }
}
