/**
 * The gRPC client of `actorserve bench`: gRPC over a plain node:http2 session, with
 * pre-encoded, pre-framed messages, reading `grpc-status` and the reply message (decoded with
 * the same protos as transports/grpc) to classify each call.
 *
 * Why not @grpc/grpc-js's Client: its per-call machinery (channel, call stack, filters,
 * deadline and metadata handling) costs the client about twice the CPU the server spends per
 * unary call (measured on the 2-core dev machine against the bare grpc-js echo at 64 calls in
 * flight: the grpc-js client thread was saturated at ~3 k calls/s; a node:http2 client
 * sent ~4.7 k calls/s using 70 % of a core), so the load generator set the limit.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { ERROR_CODE_TRAILER, ERROR_CODES_TRAILER, KSERVE_PATH, PREDICT_PATH, PREDICT_STREAM_PATH, protos } from '../transports/grpc/proto.js';
import { type Failure, GRPC_UNAVAILABLE, grpcFailure, replyFailure, socketFailure, streamReplyFailure } from './bench-failure.js';

export interface GrpcEndpoint {
  /** host:port (the :authority); `localhost` for a unix socket. */
  readonly authority: string;
  readonly socketPath?: string;
}

const WINDOW = 16 * 1024 * 1024;

/** A gRPC message frame: compressed flag 0, big-endian length, the message. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.byteLength);
  out[0] = 0;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

/**
 * The framed bytes of one PredictStream request: the pre-encoded request with `id` (field 1,
 * varint) appended; protobuf keeps the last value of a field, so any id already in `payload`
 * is overridden.
 */
export function streamMessage(payload: Uint8Array, id: number): Buffer {
  let n = 1;
  for (let v = id; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  const len = payload.byteLength + 1 + n;
  const out = Buffer.allocUnsafe(5 + len);
  out[0] = 0;
  out.writeUInt32BE(len, 1);
  out.set(payload, 5);
  let o = 5 + payload.byteLength;
  out[o++] = 0x08;
  let v = id;
  while (v >= 0x80) {
    out[o++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[o] = v;
  return out;
}

function grpcTimeout(ms: number): string {
  const t = Math.ceil(ms);
  return t < 1e8 ? `${t}m` : `${Math.min(99_999_999, Math.ceil(t / 1000))}S`;
}

function decodeMessage(value: string | string[] | undefined): string {
  const s = (Array.isArray(value) ? value[0] : value) ?? '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Splits length-prefixed gRPC messages off the front of `buf`; returns them and the rest. */
function messages(buf: Buffer): { list: Buffer[]; rest: Buffer; compressed: boolean } {
  const list: Buffer[] = [];
  let compressed = false;
  let o = 0;
  while (buf.length - o >= 5) {
    const len = buf.readUInt32BE(o + 1);
    if (buf.length - o - 5 < len) break;
    if (buf[o] !== 0) compressed = true;
    list.push(buf.subarray(o + 5, o + 5 + len));
    o += 5 + len;
  }
  return { list, rest: buf.subarray(o), compressed };
}

export class GrpcSession {
  private session: http2.ClientHttp2Session | undefined;

  constructor(
    private readonly endpoint: GrpcEndpoint,
    private readonly timeoutMs: number,
  ) {}

  /** The live HTTP/2 session, connecting (again) when there is none. */
  h2(): http2.ClientHttp2Session {
    const cur = this.session;
    if (cur && !cur.closed && !cur.destroyed) return cur;
    const { socketPath } = this.endpoint;
    const s = http2.connect(`http://${this.endpoint.authority}`, {
      ...(socketPath ? { createConnection: () => net.connect({ path: socketPath }) } : {}),
      settings: { enablePush: false, initialWindowSize: WINDOW },
    });
    s.once('connect', () => s.setLocalWindowSize(WINDOW));
    s.on('error', () => undefined); // every stream on it fails with its own error
    const drop = (): void => {
      if (this.session === s) this.session = undefined;
    };
    s.once('close', drop);
    s.once('goaway', drop);
    this.session = s;
    return s;
  }

  /**
   * One unary call with a framed request: MSService/Predict (the reply's error_msg decides),
   * or the Open Inference Protocol's ModelInfer (`kserve`: the gRPC status decides).
   * `deadlineMs` (default: the client's timeout) is the call's `grpc-timeout`: the soak sends
   * some with a short one.
   */
  unary(framed: Buffer, rpc: 'predict' | 'kserve' = 'predict', deadlineMs = this.timeoutMs): Promise<Failure | undefined> {
    return new Promise((resolve) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = this.h2().request({
          ':method': 'POST',
          ':path': rpc === 'kserve' ? KSERVE_PATH.ModelInfer : PREDICT_PATH,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': grpcTimeout(deadlineMs),
        });
      } catch (err) {
        this.session = undefined;
        resolve(socketFailure(err as NodeJS.ErrnoException));
        return;
      }
      let failure: Failure | undefined;
      let httpStatus = 0;
      let status: number | undefined;
      let message = '';
      let codes = '';
      let code = '';
      const chunks: Buffer[] = [];
      /** The actorserve code of a failed call, in the trailers or (a trailers-only reply) the headers. */
      const readCode = (h: http2.IncomingHttpHeaders): void => {
        const one = h[ERROR_CODE_TRAILER];
        if (one !== undefined) code = String(Array.isArray(one) ? one[0] : one);
      };
      req.on('response', (h) => {
        httpStatus = Number(h[':status']);
        if (h['grpc-status'] !== undefined) {
          status = Number(h['grpc-status']);
          message = decodeMessage(h['grpc-message']);
          readCode(h);
        }
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('trailers', (t: http2.IncomingHttpHeaders) => {
        status = Number(t['grpc-status']);
        message = decodeMessage(t['grpc-message']);
        const c = t[ERROR_CODES_TRAILER];
        codes = c === undefined ? '' : String(Array.isArray(c) ? c[0] : c);
        readCode(t);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        failure ??= socketFailure(err);
      });
      req.setTimeout(this.timeoutMs, () => {
        failure ??= { kind: 'timeout', message: `no reply within ${this.timeoutMs} ms` };
        req.close(http2.constants.NGHTTP2_CANCEL);
      });
      req.on('close', () => {
        if (failure) return resolve(failure);
        if (httpStatus !== 200) return resolve({ kind: httpStatus ? `HTTP ${httpStatus}` : 'connection reset', message: 'not a gRPC reply', connection: !httpStatus });
        if (status === undefined) return resolve(grpcFailure(2, 'the call ended without a grpc-status'));
        if (status !== 0) return resolve(code ? { ...grpcFailure(status, message), kind: code } : grpcFailure(status, message));
        const { list, compressed } = messages(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
        if (list.length !== 1 || compressed) return resolve({ kind: 'bad gRPC reply', message: compressed ? 'compressed reply' : `${list.length} reply messages` });
        if (rpc === 'kserve') return resolve(undefined); // status OK: the inference succeeded
        try {
          resolve(replyFailure(protos().predict.responseDeserialize(list[0]!), codes));
        } catch (err) {
          resolve({ kind: 'bad gRPC reply', message: (err as Error).message });
        }
      });
      req.end(framed);
    });
  }

  /** Opens a PredictStream call that carries many requests at once. */
  stream(): PipelinedStream {
    return new PipelinedStream(this, this.timeoutMs);
  }

  close(): void {
    this.session?.close();
    this.session?.destroy();
    this.session = undefined;
  }
}

interface Waiter {
  readonly resolve: (f: Failure | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

/** One actorserve.v1 PredictStream: requests tagged with ids, replies matched by id. */
export class PipelinedStream {
  private req: http2.ClientHttp2Stream | undefined;
  private readonly pending = new Map<number, Waiter>();
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;

  constructor(
    private readonly session: GrpcSession,
    private readonly timeoutMs: number,
  ) {}

  /** Sends one request (the pre-encoded PredictStreamRequest without id) and waits for its reply. */
  send(payload: Uint8Array): Promise<Failure | undefined> {
    return new Promise((resolve) => {
      let req: http2.ClientHttp2Stream;
      try {
        req = this.req ?? this.open();
      } catch (err) {
        resolve(socketFailure(err as NodeJS.ErrnoException));
        return;
      }
      const id = this.nextId++;
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) resolve({ kind: 'timeout', message: `no reply within ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      this.pending.set(id, { resolve, timer });
      req.write(streamMessage(payload, id));
    });
  }

  close(): void {
    this.req?.end();
    this.req = undefined;
  }

  private open(): http2.ClientHttp2Stream {
    const req = this.session.h2().request({ ':method': 'POST', ':path': PREDICT_STREAM_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    this.buf = Buffer.alloc(0);
    let status: number | undefined;
    let message = '';
    let error: Failure | undefined;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) {
        status = Number(h['grpc-status']);
        message = decodeMessage(h['grpc-message']);
      }
    });
    req.on('data', (c: Buffer) => {
      const { list, rest } = messages(this.buf.length ? Buffer.concat([this.buf, c]) : c);
      this.buf = rest;
      for (const m of list) {
        let reply;
        try {
          reply = protos().predictStream.responseDeserialize(m);
        } catch {
          continue;
        }
        const id = Number(reply.id ?? 0);
        const w = this.pending.get(id);
        if (!w) continue;
        this.pending.delete(id);
        clearTimeout(w.timer);
        w.resolve(streamReplyFailure(reply));
      }
    });
    req.on('trailers', (t: http2.IncomingHttpHeaders) => {
      status = Number(t['grpc-status']);
      message = decodeMessage(t['grpc-message']);
      // The server ended the call (a draining server ends every stream). Our side of the stream
      // is still open, so 'close' would wait until the server gives up on the connection;
      // closing it now answers the requests in flight with the server's status at once.
      req.close();
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      error ??= socketFailure(err);
    });
    req.on('close', () => {
      if (this.req === req) this.req = undefined;
      const f = error ?? grpcFailure(status === undefined || status === 0 ? GRPC_UNAVAILABLE : status, status ? message : 'the stream ended before this request was answered');
      for (const w of this.pending.values()) {
        clearTimeout(w.timer);
        w.resolve(f);
      }
      this.pending.clear();
    });
    this.req = req;
    return req;
  }
}
