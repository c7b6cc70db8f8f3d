/**
 * The soak's request mix: every kind of request it sends (good, bad, cancelled), how each is
 * sent, its share of the load, and the outcomes that are intended for it. An outcome is `ok`
 * (a reply without any error), `aborted` / `cancelled` (the client gave up on purpose), or the
 * failure kind `actorserve bench` reports (`HTTP 404`, `gRPC DEADLINE_EXCEEDED`,
 * `E_INVALID_DTYPE`, `connection reset`, ...): anything not listed for its kind is unexpected.
 *
 * Requests are built once (bytes), then sent on the load loops' own connections: REST over
 * the bench's lean keep-alive client (cli/bench-http.ts), gRPC over its node:http2 client
 * (cli/bench-grpc.ts), aborts and cancels on raw sockets and streams of their own.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { ADD_EXAMPLE_BODY, buildPayload } from '../../cli/bench-input.js';
import type { RestEndpoint } from '../../cli/bench-failure.js';
import { type GrpcSession, frame } from '../../cli/bench-grpc.js';
import { HttpConnection, encodeRequest } from '../../cli/bench-http.js';
import { PREDICT_PATH } from '../../transports/grpc/proto.js';

export type Protocol = 'rest' | 'grpc';
/** good: must succeed; bad: must be refused with its error; cancelled: the client gives up. */
export type KindClass = 'good' | 'bad' | 'cancelled';

/** A load loop's connections: one keep-alive REST connection or one HTTP/2 session. */
export interface LoopClients {
  readonly rest?: HttpConnection;
  readonly grpc?: GrpcSession;
}

export interface Kind {
  readonly id: string;
  readonly protocol: Protocol;
  readonly class: KindClass;
  /** Share of its protocol's requests, in parts of the protocol's total weight. */
  readonly weight: number;
  readonly what: string;
  /** The intended outcomes; any other is a failure of the soak. */
  readonly expected: readonly string[];
  /** Sends one request and resolves with its outcome (never rejects). */
  readonly send: (clients: LoopClients) => Promise<string>;
}

/** How long a client waits for any reply before it counts the request as `timeout`. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** The deadline of the short-deadline kinds (X-Deadline-Ms, grpc-timeout). */
export const SHORT_DEADLINE_MS = 1;
/** How long an aborting client waits after sending before it drops the request. */
const ABORT_AFTER_MS = 2;

export interface Inputs {
  /** A `{"instances": {"image": {"b64": ...}}}` body for the bundled resnet, or none to leave resnet out. */
  readonly resnetBody?: string;
}

const ADD = { servable: 'add', method: 'add_common', version: 0 };
const RESNET = { servable: 'resnet', method: 'classify_top1', version: 0 };
const i32x4 = Buffer.from(Int32Array.of(1, 2, 3, 4).buffer).toString('base64');
const WRONG_DTYPE_BODY = `{"instances":{"x1":{"b64":"${i32x4}","type":"int32","shape":[2,2]},"x2":{"b64":"${i32x4}","type":"int32","shape":[2,2]}}}`;
const WRONG_SHAPE_BODY = '{"instances":{"x1":[[1.0, 1.0, 1.0]], "x2":[[1.0, 1.0, 1.0]]}}';
const MALFORMED_JSON_BODY = '{"instances":{"x1":[[1.0, 1.0], [1.0, 1.0]], "x2":[[1.0, 1.0], [1.0';
/** Bytes that are no PredictRequest: field 1 (servable_spec) claims 127 bytes and ends after 3. */
const MALFORMED_PROTOBUF = Buffer.from([0x0a, 0x7f, 0x0a, 0x01, 0x61]);

/** The outcome of an abort or cancel whose reply came before the client gave up. */
const ANSWERED_FIRST = 'answered before the client gave up';

const outcome = (f: { readonly kind: string } | undefined): string => (f ? f.kind : 'ok');

/** The REST kinds. */
function restKinds(endpoint: RestEndpoint, inputs: Inputs): Kind[] {
  const json = { 'content-type': 'application/json' };
  const req = (path: string, body: string, headers: Record<string, string> = json): Buffer => encodeRequest(endpoint, path, headers, Buffer.from(body));
  const on = (bytes: Buffer) => async (c: LoopClients) => outcome(await c.rest!.send(bytes));
  const addPath = '/model/add:add_common';
  const kinds: Kind[] = [
    { id: 'rest-add', protocol: 'rest', class: 'good', weight: 60, what: 'add_common, the README body', expected: ['ok'], send: on(req(addPath, ADD_EXAMPLE_BODY)) },
    { id: 'rest-malformed-json', protocol: 'rest', class: 'bad', weight: 4, what: 'add_common, a body cut mid-JSON', expected: ['HTTP 400'], send: on(req(addPath, MALFORMED_JSON_BODY)) },
    { id: 'rest-unknown-servable', protocol: 'rest', class: 'bad', weight: 3, what: 'a servable that is not loaded', expected: ['HTTP 404'], send: on(req('/model/no_such_servable:add_common', ADD_EXAMPLE_BODY)) },
    { id: 'rest-unknown-method', protocol: 'rest', class: 'bad', weight: 3, what: 'add with a method it lacks', expected: ['HTTP 404'], send: on(req('/model/add:no_such_method', ADD_EXAMPLE_BODY)) },
    { id: 'rest-wrong-dtype', protocol: 'rest', class: 'bad', weight: 3, what: 'add_common with int32 inputs (b64)', expected: ['HTTP 400'], send: on(req(addPath, WRONG_DTYPE_BODY)) },
    { id: 'rest-wrong-shape', protocol: 'rest', class: 'bad', weight: 3, what: 'add_common with [1, 3] inputs', expected: ['HTTP 400'], send: on(req(addPath, WRONG_SHAPE_BODY)) },
    {
      id: 'rest-short-deadline',
      protocol: 'rest',
      class: 'cancelled',
      weight: 3,
      what: `add_common with X-Deadline-Ms: ${SHORT_DEADLINE_MS}`,
      expected: ['ok', 'HTTP 504'],
      send: on(req(addPath, ADD_EXAMPLE_BODY, { ...json, 'x-deadline-ms': String(SHORT_DEADLINE_MS) })),
    },
    {
      id: 'rest-abort-mid-body',
      protocol: 'rest',
      class: 'cancelled',
      weight: 2,
      what: 'a new connection that sends the head and half the body, then closes',
      expected: ['aborted'],
      send: () => abortRest(endpoint, req(addPath, ADD_EXAMPLE_BODY), 'mid-body'),
    },
    {
      id: 'rest-abort-in-flight',
      protocol: 'rest',
      class: 'cancelled',
      weight: 2,
      what: `a new connection that sends the whole request and closes ${ABORT_AFTER_MS} ms later`,
      expected: ['aborted', ANSWERED_FIRST],
      send: () => abortRest(endpoint, req(inputs.resnetBody ? '/model/resnet:classify_top1' : addPath, inputs.resnetBody ?? ADD_EXAMPLE_BODY), 'in-flight'),
    },
  ];
  if (inputs.resnetBody) {
    kinds.push({ id: 'rest-resnet', protocol: 'rest', class: 'good', weight: 1, what: 'resnet classify_top1, a 320×240 JPEG', expected: ['ok'], send: on(req('/model/resnet:classify_top1', inputs.resnetBody)) });
  }
  return kinds;
}

/** The gRPC (MSService/Predict, unary) kinds. */
function grpcKinds(inputs: Inputs): Kind[] {
  const add = Buffer.from(ADD_EXAMPLE_BODY);
  const predict = (spec: typeof ADD, body: Buffer, numbersDtype: 'float32' | 'int32' = 'float32'): Buffer => frame(buildPayload('grpc', body, spec, { numbersDtype }).bytes);
  const on = (framed: Buffer, deadlineMs?: number) => async (c: LoopClients) => outcome(await c.grpc!.unary(framed, 'predict', deadlineMs));
  const addFrame = predict(ADD, add);
  const resnetFrame = inputs.resnetBody ? predict(RESNET, Buffer.from(inputs.resnetBody)) : undefined;
  const kinds: Kind[] = [
    { id: 'grpc-add', protocol: 'grpc', class: 'good', weight: 60, what: 'Predict add_common, the README body', expected: ['ok'], send: on(addFrame) },
    { id: 'grpc-malformed-protobuf', protocol: 'grpc', class: 'bad', weight: 4, what: 'Predict with bytes that are no PredictRequest', expected: ['E_INVALID_ARGUMENT'], send: on(frame(MALFORMED_PROTOBUF)) },
    { id: 'grpc-unknown-servable', protocol: 'grpc', class: 'bad', weight: 3, what: 'a servable that is not loaded', expected: ['E_UNKNOWN_SERVABLE'], send: on(predict({ ...ADD, servable: 'no_such_servable' }, add)) },
    { id: 'grpc-unknown-method', protocol: 'grpc', class: 'bad', weight: 3, what: 'add with a method it lacks', expected: ['E_UNKNOWN_METHOD'], send: on(predict({ ...ADD, method: 'no_such_method' }, add)) },
    { id: 'grpc-wrong-dtype', protocol: 'grpc', class: 'bad', weight: 3, what: 'add_common with int32 inputs', expected: ['E_INVALID_DTYPE'], send: on(predict(ADD, add, 'int32')) },
    { id: 'grpc-wrong-shape', protocol: 'grpc', class: 'bad', weight: 3, what: 'add_common with [1, 3] inputs', expected: ['E_INVALID_SHAPE'], send: on(predict(ADD, Buffer.from(WRONG_SHAPE_BODY))) },
    {
      id: 'grpc-short-deadline',
      protocol: 'grpc',
      class: 'cancelled',
      weight: 3,
      what: `Predict add_common with grpc-timeout ${SHORT_DEADLINE_MS} ms`,
      expected: ['ok', 'gRPC DEADLINE_EXCEEDED', 'E_DEADLINE_EXCEEDED'],
      send: on(addFrame, SHORT_DEADLINE_MS),
    },
    {
      id: 'grpc-cancel-in-flight',
      protocol: 'grpc',
      class: 'cancelled',
      weight: 3,
      what: `Predict ${resnetFrame ? 'resnet classify_top1' : 'add_common'}, cancelled (RST_STREAM) ${ABORT_AFTER_MS} ms after sending`,
      expected: ['cancelled', ANSWERED_FIRST],
      send: (c) => cancelGrpc(c.grpc!, resnetFrame ?? addFrame),
    },
  ];
  if (resnetFrame) {
    kinds.push({ id: 'grpc-resnet', protocol: 'grpc', class: 'good', weight: 1, what: 'Predict resnet classify_top1, a 320×240 JPEG', expected: ['ok'], send: on(resnetFrame) });
  }
  return kinds;
}

/** Every kind of request, REST first; gRPC kinds are sent on the loops' own sessions. */
export function requestKinds(rest: RestEndpoint, inputs: Inputs): Kind[] {
  return [...restKinds(rest, inputs), ...grpcKinds(inputs)];
}

/**
 * A client that gives up: a connection of its own sends `request` (whole, or the head and half
 * the body) and closes ABORT_AFTER_MS later. `aborted`, or ANSWERED_FIRST when reply bytes came
 * before the close; a socket error before it is its failure kind.
 */
function abortRest(endpoint: RestEndpoint, request: Buffer, how: 'mid-body' | 'in-flight'): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    let settled = false;
    const settle = (o: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    let answered = false;
    const timer = setTimeout(() => settle('timeout'), REQUEST_TIMEOUT_MS);
    socket.on('data', () => (answered = true));
    socket.on('error', (err: NodeJS.ErrnoException) => settle(err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? 'socket error')));
    socket.on('connect', () => {
      const bodyStart = request.indexOf('\r\n\r\n') + 4;
      socket.write(how === 'in-flight' ? request : request.subarray(0, bodyStart + ((request.length - bodyStart) >> 1)));
      setTimeout(() => settle(answered ? ANSWERED_FIRST : 'aborted'), ABORT_AFTER_MS);
    });
  });
}

/**
 * A unary Predict cancelled by the client (RST_STREAM CANCEL) ABORT_AFTER_MS after it was
 * sent: `cancelled`, or ANSWERED_FIRST when the call had ended before.
 */
function cancelGrpc(session: GrpcSession, framed: Buffer): Promise<string> {
  return new Promise((resolve) => {
    let req: http2.ClientHttp2Stream;
    try {
      req = session.h2().request({ ':method': 'POST', ':path': PREDICT_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    } catch (err) {
      resolve((err as NodeJS.ErrnoException).code ?? 'socket error');
      return;
    }
    let failure: string | undefined;
    req.on('error', (err: NodeJS.ErrnoException) => {
      failure ??= err.code ?? 'stream error';
    });
    req.on('data', () => undefined);
    let cancelled = false;
    const timer = setTimeout(() => {
      cancelled = true;
      req.close(http2.constants.NGHTTP2_CANCEL);
    }, ABORT_AFTER_MS);
    req.on('close', () => {
      clearTimeout(timer);
      resolve(failure ?? (cancelled ? 'cancelled' : ANSWERED_FIRST));
    });
    req.end(framed);
  });
}
