/**
 * The gRPC transport on @grpc/grpc-js:
 *
 * - `mindspore.serving.proto.MSService/Predict`, wire-compatible with MindSpore Serving's
 *   clients: status OK always, errors in `error_msg` (none / one for the whole request / one
 *   per instance), plus an `actorserve-error-codes` trailer with our stable codes (ignored by
 *   MindSpore's clients, read by ours).
 * - `actorserve.v1.ActorServe/PredictStream`, our pipelined bidirectional stream (see
 *   predict-stream.ts), with real gRPC status codes for whole-stream errors.
 * - `actorserve.v1.ActorServe/InferStream`, server streaming: one reply per event of a
 *   streaming method (token generation) or per instance of any other (infer-stream.ts).
 * - `inference.GRPCInferenceService`, the Open Inference Protocol (KServe v2) with Triton's
 *   ModelStreamInfer (kserve-service.ts): real gRPC statuses and the `actorserve-error-code`
 *   trailer; stream requests that fail are answered in `error_message`.
 *
 * It only decodes, calls the engine and encodes. Limits are explicit: message size both ways
 * (maxMsgMbSize, default 100 MiB as MindSpore), concurrent streams per connection,
 * keepalive pings, idle connections, a per-stream window of requests in flight. A client
 * deadline becomes the engine's deadlineMs; a cancelled call's reply is dropped.
 *
 *   const grpc = await startGrpcServer(engine, '127.0.0.1:5500');   // or 'unix:/path', { sslConfig }
 *   ...
 *   await grpc.close();
 */
import { unlinkSync } from 'node:fs';
import {
  Metadata,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type StatusObject,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { Cancellation } from '../../engine/cancellation.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import type { SSLConfig, TlsPem } from '../ssl-config.js';
import { type GrpcServerOptions, type GrpcSettings, grpcSettings } from './options.js';
import type { ServingEngine } from '../../facade/engine.js';
import { type ListenAddress, claimSocketPath, configuredAddress, formatListenAddress, parseListenAddress } from '../listen-address.js';
import { restrictSocketFile } from '../listen-address.js';
import { clientRequestId, requestIdOf } from '../request-id.js';
import { encodeMsReply, runPredict } from './predict.js';
import { predictStreamRpc } from './predict-stream.js';
import { serveInferStream } from './infer-stream.js';
import { PipelinedStreamSession, type StreamSession, type StreamStats } from './stream-session.js';
import { encodeMetadata } from './metadata.js';
import { MalformedMessage, tolerantService } from './malformed.js';
import * as kserve from './kserve-service.js';
import {
  ERROR_CODE_TRAILER,
  ERROR_CODES_TRAILER,
  type WireInferStreamReply,
  type WireInferStreamRequest,
  type WireModelInferRequest,
  type WireModelStreamInferResponse,
  type WireModelMetadataRequest,
  type WireModelRequest,
  type WirePredictReply,
  type WirePredictRequest,
  type WireStreamReply,
  type WireStreamRequest,
  protos,
} from './proto.js';

export type { SSLConfig, GrpcServerOptions };

export interface GrpcServerStats extends StreamStats {
  unaryCalls: number;
  streams: number;
  activeStreams: number;
}

export interface GrpcServer {
  /** The address served, with the port actually bound: `127.0.0.1:5500`, `[::1]:5500`, `unix:/path`. */
  readonly address: string;
  /** The TCP port bound (0 for a unix socket). */
  readonly port: number;
  /** Counters, for tests and operators. */
  readonly stats: Readonly<GrpcServerStats>;
  /**
   * Stops accepting calls, lets calls in flight finish (streams answer what they have read and
   * end with UNAVAILABLE) for up to `timeoutMs` (default: the closeTimeoutMs option), then cuts
   * off whatever is left. The engine's drain passes its own timeout, so `--drain-timeout-ms`
   * bounds the gRPC close as well.
   */
  close(timeoutMs?: number): Promise<void>;
}

export async function startGrpcServer(engine: ServingEngine, address: string, options: GrpcServerOptions = {}): Promise<GrpcServer> {
  const listen = parseListenAddress(address, 'gRPC server');
  const settings = grpcSettings(options);
  const server = new GrpcJsServer(engine, listen, settings);
  await server.start();
  return server;
}

function credentials(ssl: SSLConfig | undefined, pem: TlsPem | undefined): ServerCredentials {
  if (!ssl || !pem) return ServerCredentials.createInsecure();
  try {
    return ServerCredentials.createSsl(pem.customCa ?? null, [{ cert_chain: pem.certificate, private_key: pem.privateKey }], ssl.verifyClient === true);
  } catch (err) {
    throw new ServingError(
      'E_INVALID_ARGUMENT',
      `gRPC server sslConfig: the certificate, private key or CA could not be loaded (${(err as Error).message}); check they are PEM files`,
    );
  }
}

/** Milliseconds left until a grpc-js deadline; undefined when the call has none. */
function remainingMs(deadline: Date | number): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at - Date.now() : undefined;
}

/** A call's end with the error's gRPC status and its code in the `actorserve-error-code` trailer (added to `metadata`). */
function errorStatus(error: ServingError, metadata: Metadata): Partial<StatusObject> {
  metadata.set(ERROR_CODE_TRAILER, error.code);
  return { code: error.grpcStatus, details: error.message, metadata };
}

/** Metadata key of the request id (as REST's X-Request-Id header). */
const REQUEST_ID_KEY = 'x-request-id';

/** Trailing metadata carrying the request id, when there is one. */
function requestTrailer(requestId: string | undefined): Metadata {
  const m = new Metadata();
  if (requestId !== undefined) m.set(REQUEST_ID_KEY, requestId);
  return m;
}

class GrpcJsServer implements GrpcServer {
  address = '';
  port = 0;
  readonly stats: GrpcServerStats = { unaryCalls: 0, streams: 0, activeStreams: 0, streamRequests: 0, peakStreamInflight: 0 };
  private readonly server: Server;
  private readonly sessions = new Set<StreamSession>();
  private closing: Promise<void> | undefined;
  private ownsSocketFile = false;

  constructor(
    private readonly engine: ServingEngine,
    private readonly listen: ListenAddress,
    private readonly settings: GrpcSettings,
  ) {
    this.server = new Server({
      'grpc.max_receive_message_length': settings.maxMsgBytes,
      'grpc.max_send_message_length': settings.maxMsgBytes,
      'grpc.max_concurrent_streams': settings.maxConcurrentStreams,
      'grpc.keepalive_time_ms': settings.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
      'grpc.max_connection_idle_ms': settings.maxConnectionIdleMs,
    });
    const { msService, actorServe, inference } = protos();
    this.server.addService(tolerantService(msService), { Predict: this.predict.bind(this) });
    this.server.addService(tolerantService(actorServe), {
      PredictStream: this.predictStream.bind(this),
      GetModelMetadata: this.unary((call: ServerUnaryCall<WireModelMetadataRequest, unknown>) =>
        encodeMetadata(this.engine.metadata(call.request.name ?? '', call.request.version_number ?? 0)),
      ),
      InferStream: this.inferStream.bind(this),
    });
    this.server.addService(tolerantService(inference), {
      ServerLive: this.unary(() => kserve.serverLive()),
      ServerReady: this.unary(() => kserve.serverReady(this.engine)),
      ModelReady: this.unary((call: ServerUnaryCall<WireModelRequest, unknown>) => kserve.modelReady(this.engine, call.request)),
      ServerMetadata: this.unary(() => kserve.serverMetadata(this.engine)),
      ModelMetadata: this.unary((call: ServerUnaryCall<WireModelRequest, unknown>) => kserve.modelMetadata(this.engine, call.request)),
      ModelInfer: this.unary((call: ServerUnaryCall<WireModelInferRequest, unknown>, ctx) => kserve.modelInfer(this.engine, call.request, ctx)),
      ModelStreamInfer: this.modelStreamInfer.bind(this),
    });
  }

  async start(): Promise<void> {
    const l = this.listen;
    const creds = credentials(this.settings.ssl, this.settings.pem);
    if (l.kind === 'unix') await claimSocketPath(l.path, 'gRPC server');
    const where = configuredAddress(l);
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(configuredAddress(l), creds, (err, bound) => {
        if (err) {
          reject(new ServingError('E_UNAVAILABLE', `gRPC server could not bind to ${where} (${err.message})`, { cause: err }));
        } else {
          resolve(bound);
        }
      });
    });
    this.ownsSocketFile = l.kind === 'unix';
    if (l.kind === 'unix') restrictSocketFile(l.path);
    this.port = l.kind === 'unix' ? 0 : port;
    this.address = formatListenAddress(l, this.port);
    this.engine.log(`gRPC server listening on ${this.address}${this.settings.ssl ? ' (TLS)' : ''}`);
  }

  /**
   * What a unary call brings besides its message: its deadline, a cancellation the engine
   * watches, and the client's x-request-id (while the access log is on, a new one when it sent
   * none; it comes back as a trailer).
   */
  private callContext(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): { deadlineMs: number | undefined; signal: Cancellation; requestId: string | undefined } {
    // grpc-js emits 'cancelled' when the call's stream closes, answered or not; after the
    // answer it finds nothing left to cancel.
    const signal = new Cancellation();
    call.on('cancelled', () => signal.cancel());
    const sent = call.metadata.get(REQUEST_ID_KEY)[0];
    const requestId = this.engine.requestLog ? requestIdOf(sent) : clientRequestId(sent);
    return { deadlineMs: remainingMs(call.getDeadline()), signal, requestId };
  }

  /**
   * A unary handler with real gRPC statuses: `run`'s value is the reply; a ServingError it
   * throws or rejects with ends the call with the code's status and the
   * `actorserve-error-code` trailer. A call cancelled (or past its deadline) is not answered.
   */
  private unary<Req, Res>(
    run: (call: ServerUnaryCall<Req, Res>, ctx: ReturnType<GrpcJsServer['callContext']>) => Res | Promise<Res>,
  ): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
    return (call, callback) => {
      this.stats.unaryCalls++;
      const ctx = this.callContext(call);
      const trailer = (): Metadata => requestTrailer(ctx.requestId);
      new Promise<Res>((resolve) => {
        const request: unknown = call.request;
        if (request instanceof MalformedMessage) throw request.error();
        resolve(run(call, ctx));
      }).then(
        (reply) => {
          if (!ctx.signal.aborted) callback(null, reply, trailer());
        },
        (err: unknown) => {
          if (ctx.signal.aborted) return;
          const error = toServingError(err);
          if (error.code === 'E_INTERNAL') this.engine.log(`gRPC ${call.getPath()}: internal error: ${(err as Error)?.stack ?? error.message}`);
          callback(errorStatus(error, trailer()));
        },
      );
    };
  }

  private predict(call: ServerUnaryCall<WirePredictRequest, WirePredictReply>, callback: sendUnaryData<WirePredictReply>): void {
    this.stats.unaryCalls++;
    const { signal: cancellation, deadlineMs, requestId } = this.callContext(call);
    const req = call.request;
    const malformed: unknown = req;
    if (malformed instanceof MalformedMessage) {
      callback(errorStatus(malformed.error(), requestTrailer(requestId)));
      return;
    }
    runPredict(this.engine, req.servable_spec, req.instances, {
      deadlineMs,
      signal: cancellation,
      log: this.engine.log,
      sequenceMetadata: (name) => {
        const v = call.metadata.get(`sequence-${name}`)[0];
        return v === undefined ? undefined : String(v);
      },
      ...(requestId !== undefined ? { requestId } : {}),
    }).then((outcome) => {
      if (cancellation.aborted) return; // cancelled or past its deadline: nobody to answer
      let encoded: ReturnType<typeof encodeMsReply>;
      try {
        encoded = encodeMsReply(req.servable_spec, outcome);
      } catch (err) {
        // a bug, not bad input: answer (in MindSpore's form) rather than leave the call hanging
        this.engine.log(`gRPC predict: cannot encode the reply: ${(err as Error)?.stack ?? String(err)}`);
        const e = new ServingError('E_INTERNAL', `the reply could not be encoded: ${(err as Error)?.message ?? String(err)}`);
        encoded = encodeMsReply(req.servable_spec, { ok: false, error: e });
      }
      const trailer = requestTrailer(requestId);
      if (encoded.codes.length > 0) trailer.set(ERROR_CODES_TRAILER, encoded.codes.join(','));
      callback(null, encoded.reply, trailer);
    }).catch((err: unknown) => this.engine.log(`gRPC predict: answering the call failed: ${(err as Error)?.stack ?? String(err)}`));
  }

  private predictStream(call: ServerDuplexStream<WireStreamRequest, WireStreamReply>): void {
    this.startSession(new PipelinedStreamSession(call, predictStreamRpc(this.engine), this.settings.streamWindow, this.stats, this.engine.log, this.endSession));
  }

  private inferStream(call: ServerWritableStream<WireInferStreamRequest, WireInferStreamReply>): void {
    this.stats.streams++;
    this.stats.activeStreams++;
    const { signal, deadlineMs, requestId } = this.callContext(call);
    const trailer = (): Metadata => requestTrailer(requestId);
    void serveInferStream(this.engine, call, { signal, callDeadlineMs: deadlineMs, requestId, trailer, log: this.engine.log }).finally(() => {
      this.stats.activeStreams--;
    });
  }

  private modelStreamInfer(call: ServerDuplexStream<WireModelInferRequest, WireModelStreamInferResponse>): void {
    this.startSession(new PipelinedStreamSession(call, kserve.modelStreamInferRpc(this.engine, this.engine.log), this.settings.streamWindow, this.stats, this.engine.log, this.endSession));
  }

  private readonly endSession = (s: StreamSession): void => {
    if (this.sessions.delete(s)) this.stats.activeStreams--;
  };

  private startSession(session: StreamSession): void {
    this.stats.streams++;
    this.stats.activeStreams++;
    this.sessions.add(session);
    session.start();
    if (this.closing) session.drain();
  }

  close(timeoutMs = this.settings.closeTimeoutMs): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    for (const s of [...this.sessions]) s.drain();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, timeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.ownsSocketFile && this.listen.kind === 'unix') {
      try {
        unlinkSync(this.listen.path);
      } catch {
        // already removed with the listener
      }
    }
  }
}
