/**
 * One rank of a distributed servable: the process an agent's start-up process
 * (agent-startup.ts) forks per local rank. It loads the rank's ONNX model(s) on a device actor
 * (a worker thread with a real ONNX Runtime session, as a local servable's), serves the Agent
 * service (PredictStream, Exit) on its agent address, registers with the coordinator and heartbeats
 * it. A heartbeat answered `known: false` (the coordinator restarted, or dropped the rank)
 * makes it register again; a coordinator unreachable for `coordinatorRetryMs` makes it exit
 * (code 3). It exits when its start-up process goes away (the IPC channel closes).
 *
 * Its settings arrive as JSON in the ACTORSERVE_AGENT_RANK environment variable; it reports
 * to its parent over the IPC channel (`RankMessage`).
 */
import * as grpc from '@grpc/grpc-js';
import { isDType, isNumericDType } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import { DeviceGroup } from './device-group.js';
import { localDeviceFactory } from './device-handle.js';
import type { BatchInput } from './device.js';
import {
  AGENT_PROTOCOL_VERSION,
  CHANNEL_OPTIONS,
  COORDINATOR_CHANNEL_OPTIONS,
  type ExitReply,
  type ExitRequest,
  type HeartbeatReply,
  type HeartbeatRequest,
  type PredictReply,
  type PredictRequest,
  type RegisterReply,
  type RankMessage,
  type RankSettings,
  RANK_EXIT,
  type RegisterRequest,
  agentProtos,
  arrayToWire,
  graphToWire,
  grpcCode,
  unary,
  wireToArray,
} from './agent-wire.js';
import { agentCredentials, linkFailure, tlsFailure } from './agent-tls.js';

const settings = JSON.parse(process.env.ACTORSERVE_AGENT_RANK ?? 'null') as RankSettings | null;
if (!settings) {
  process.stderr.write('agent-rank: ACTORSERVE_AGENT_RANK is not set; this process is started by actorserve agent\n');
  process.exit(RANK_EXIT.failed);
}
const s = settings;
const label = `rank ${s.rankId}`;
const log = (line: string): void => void process.stderr.write(`[actorserve agent ${label}] ${line}\n`);
const send = (m: RankMessage): void => void process.send?.(m);

let stopping = false;
const group = new DeviceGroup({
  label,
  deviceIds: [s.deviceId],
  spawn: localDeviceFactory({
    init: {
      deviceType: s.deviceType,
      intraOpThreads: s.intraOpThreads,
      models: [{ key: 'rank', files: s.modelFiles }],
      ...(s.decKey ? { decryption: { key: Buffer.from(s.decKey, 'hex'), mode: s.decMode ?? 'AES-GCM' } } : {}),
    },
    slots: 2,
    initialSlotBytes: 64 * 1024,
  }),
  onCapacity: () => pumpWaiting(),
  log,
});

/** Batches waiting for a free slot of the device actor. */
const waiting: (() => void)[] = [];
function pumpWaiting(): void {
  if (!group.pick()) return;
  for (const wake of waiting.splice(0)) wake(); // each checks again for a slot
}

function toBatchInputs(request: PredictRequest): BatchInput[] {
  return request.inputs.map((t, k) => {
    if (!isDType(t.dtype) || !isNumericDType(t.dtype)) throw new ServingError('E_INVALID_DTYPE', `input ${k}: unsupported dtype '${t.dtype}'`);
    const a = wireToArray(t, `input ${k}`);
    return { dtype: a.dtype, dims: a.dims, parts: [a.data] };
  });
}

/** Runs one batch of the coordinator's on the device actor. */
async function predict(request: PredictRequest): Promise<PredictReply> {
  const inputs = toBatchInputs(request);
  let device = group.pick();
  while (!device) {
    if (!group.available) throw new ServingError('E_UNAVAILABLE', `${label}: its device actor is not running`);
    await new Promise<void>((resolve) => waiting.push(resolve));
    device = group.pick();
  }
  const result = await device.run(0, request.subgraph, inputs);
  try {
    return {
      outputs: result.outputs.map((o) => {
        if (!('data' in o)) throw new ServingError('E_MODEL_FAILED', `${label}: string outputs are not served by distributed servables`);
        // copy out of the slot before it is released
        return arrayToWire(o.dtype, o.dims, o.data.slice());
      }),
      error: '',
      id: request.id,
    };
  } finally {
    result.release();
  }
}

let session = '';
let coordinator: grpc.Client | undefined;
let heartbeatTimer: NodeJS.Timeout | undefined;
let graphs: RegisterRequest['graphs'] = [];

async function register(): Promise<void> {
  const reply = await unary<RegisterRequest, RegisterReply>(
    coordinator!,
    'Register',
    { protocol_version: AGENT_PROTOCOL_VERSION, rank_id: s.rankId, address: s.address, pid: process.pid, graphs },
    5000,
  );
  session = reply.session;
}

/** Registers, retrying while the coordinator is unreachable; a refusal (wrong rank, mismatched shard) is final. */
async function registerWithRetry(): Promise<void> {
  const until = performance.now() + s.coordinatorRetryMs;
  for (;;) {
    try {
      return await register();
    } catch (err) {
      const code = grpcCode(err);
      if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.INVALID_ARGUMENT) {
        throw new ServingError('E_CONFIG_INVALID', `the coordinator at ${s.coordinator} refused ${label}: ${(err as grpc.ServiceError).details}`);
      }
      if (tlsFailure(err) || performance.now() >= until) {
        throw new ServingError('E_UNAVAILABLE', `cannot reach the coordinator at ${s.coordinator}${tlsFailure(err) ? '' : ` for ${s.coordinatorRetryMs / 1000} s`}: ${linkFailure(err, s.sslConfig !== undefined)}`);
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, s.heartbeatIntervalMs)));
    }
  }
}

let lastContact = performance.now();
let beating = false;
async function beat(): Promise<void> {
  if (beating || stopping) return;
  beating = true;
  try {
    const reply = await unary<HeartbeatRequest, HeartbeatReply>(coordinator!, 'Heartbeat', { rank_id: s.rankId, address: s.address, session }, Math.max(1000, s.heartbeatIntervalMs));
    lastContact = performance.now();
    if (!reply.known) {
      log(`the coordinator does not know this rank (it restarted, or dropped the rank); registering again`);
      await register();
      send({ type: 'registered', rankId: s.rankId, address: s.address, pid: process.pid });
    }
  } catch (err) {
    const code = grpcCode(err);
    if (code === grpc.status.FAILED_PRECONDITION || code === grpc.status.INVALID_ARGUMENT) {
      log(`registering again was refused: ${(err as grpc.ServiceError).details}`);
    }
    if (performance.now() - lastContact > s.coordinatorRetryMs) {
      log(`no contact with the coordinator at ${s.coordinator} for ${s.coordinatorRetryMs / 1000} s; exiting`);
      await shutdown(RANK_EXIT.coordinatorGone);
    }
  } finally {
    beating = false;
  }
}

const server = new grpc.Server(CHANNEL_OPTIONS);

async function shutdown(code: number, reason = 'its process is stopping'): Promise<never> {
  if (stopping) return new Promise<never>(() => undefined); // the first shutdown exits
  stopping = true;
  clearInterval(heartbeatTimer);
  if (coordinator && session !== '') {
    // the coordinator marks the rank lost now rather than at its heartbeat timeout
    await unary<ExitRequest, ExitReply>(coordinator, 'Exit', { rank_id: s.rankId, address: s.address, reason }, 1000).catch(() => undefined);
  }
  server.forceShutdown();
  coordinator?.close();
  await group.stop().catch(() => undefined);
  process.exit(code);
}

async function main(): Promise<void> {
  process.on('disconnect', () => void shutdown(RANK_EXIT.stopped)); // the start-up process is gone
  process.on('SIGTERM', () => void shutdown(RANK_EXIT.stopped));
  process.on('SIGINT', () => void shutdown(RANK_EXIT.stopped));
  const credentials = agentCredentials(s.sslConfig, `${label}: sslConfig`);
  await group.start();
  graphs = group.graphs[0]!.map(graphToWire);
  server.addService(agentProtos().agent, {
    // the coordinator's batches, each answered with its id as soon as it ran (in any order)
    PredictStream: (call: grpc.ServerDuplexStream<PredictRequest, PredictReply>) => {
      const answer = (reply: PredictReply): void => {
        if (!call.cancelled && call.writable) call.write(reply);
      };
      call.on('data', (request: PredictRequest) => {
        predict(request).then(answer, (err: Error) => answer({ outputs: [], error: err.message, id: request.id }));
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined); // the coordinator went away: its heartbeat notices
    },
    Exit: (call: grpc.ServerUnaryCall<ExitRequest, ExitReply>, callback: grpc.sendUnaryData<ExitReply>) => {
      callback(null, {});
      log(`asked to exit by the coordinator (${call.request.reason || 'no reason given'})`);
      session = ''; // the coordinator is stopping: no Exit back to it
      setImmediate(() => void shutdown(RANK_EXIT.stopped));
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(s.address, credentials.server, (err) => (err ? reject(new Error(`cannot listen on ${s.address}: ${err.message}`)) : resolve()));
  });
  coordinator = new (agentProtos().CoordinatorClient)(s.coordinator, credentials.channel, COORDINATOR_CHANNEL_OPTIONS);
  await registerWithRetry();
  lastContact = performance.now();
  log(`registered with the coordinator at ${s.coordinator}, serving on ${s.address}`);
  send({ type: 'registered', rankId: s.rankId, address: s.address, pid: process.pid });
  heartbeatTimer = setInterval(() => void beat(), s.heartbeatIntervalMs);
}

main().catch(async (err: Error) => {
  const message = err instanceof ServingError || err.message ? err.message : String(err);
  log(`failed: ${message}`);
  send({ type: 'failed', rankId: s.rankId, error: message });
  await shutdown(RANK_EXIT.failed, message);
});
