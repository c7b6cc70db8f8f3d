// actorserve.v1 InferStream against methods that do not stream (one event per instance):
// the client's inferStream and generate iterators, whole-call errors as real gRPC statuses,
// instance errors as events, parameters on the wire, and a raw grpc-js call reading replies.
import { Client as GrpcClient, Metadata, credentials, status } from '@grpc/grpc-js';
import t from 'tap';
import { ServingError } from '../../../dist/engine/errors.js';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { Client } from '../../../dist/transports/grpc/client.js';
import { INFER_STREAM_PATH, protos } from '../../../dist/transports/grpc/proto.js';
import type { WireInferStreamReply } from '../../../dist/transports/grpc/proto.js';
import { encodeTensor } from '../../../dist/transports/grpc/codec.js';
import { stringTensor, tensorStrings } from '../../../dist/engine/tensor.js';
import { startStreamEngine, type StreamEngine } from '../../helpers/streams.js';

let env: StreamEngine;
let server: GrpcServer;

t.before(async () => {
  env = await startStreamEngine('grpc-infer-stream');
  server = await startGrpcServer(env.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await server?.close();
  await env?.stop();
});

t.test('inferStream: one event per instance of a method that does not stream, then the end', async (t) => {
  const client = new Client(server.address, 'streamer', 'echo');
  t.teardown(() => client.close());
  const events = [];
  for await (const e of client.inferStream([{ x: 'a' }, { x: 'b' }, { x: 'c' }])) events.push(e);
  t.same(
    events.map((e) => ('outputs' in e ? [e.index, tensorStrings(e.outputs['y']!)] : e)),
    [
      [0, ['a']],
      [1, ['b']],
      [2, ['c']],
    ],
  );
});

t.test('inferStream: an instance that fails after the stream began is an event with its error', async (t) => {
  const client = new Client(server.address, 'streamer', 'fail');
  t.teardown(() => client.close());
  const events = [];
  for await (const e of client.inferStream([{ x: 'fine' }, { x: 'boom' }])) events.push(e);
  t.equal(events.length, 2);
  const failed = events.find((e) => 'error' in e);
  t.ok(failed && 'error' in failed && failed.error instanceof ServingError);
  t.match(failed, { index: 1, error: { code: 'E_STAGE_FAILED', message: /boom was asked for/ } });
});

t.test('inferStream: whole-call errors throw with the real gRPC status behind them', async (t) => {
  const cases: [Client, unknown, string, RegExp][] = [
    [new Client(server.address, 'nope', 'echo'), [{ x: 1 }], 'E_UNKNOWN_SERVABLE', /servable 'nope' is not loaded/],
    [new Client(server.address, 'streamer', 'nope'), [{ x: 1 }], 'E_UNKNOWN_METHOD', /no method "nope"/],
    [new Client(server.address, 'streamer', 'echo'), [], 'E_NO_INSTANCES', /no instances/],
    // one instance whose first event is an error: the call fails as a whole
    [new Client(server.address, 'streamer', 'fail'), [{ x: 'boom' }], 'E_STAGE_FAILED', /boom was asked for/],
  ];
  for (const [client, instances, code, message] of cases) {
    const it = client.inferStream(instances as never);
    await t.rejects(it.next(), { name: 'ServingError', code, message }, code);
    client.close();
  }
});

t.test('a raw grpc-js call sees replies, parameters accepted, and status OK at the end', async (t) => {
  const { inferStream } = protos();
  const c = new GrpcClient(server.address, credentials.createInsecure());
  t.teardown(() => c.close());
  const call = c.makeServerStreamRequest(
    INFER_STREAM_PATH,
    inferStream.requestSerialize,
    inferStream.responseDeserialize,
    {
      servable_spec: { name: 'streamer', method_name: 'generate' },
      instances: [{ items: { text_input: encodeTensor(stringTensor('hi')) } }],
      parameters: { max_tokens: { int64_param: 8 }, temperature: { double_param: 0.5 }, stop: { string_param: '["."]' }, greedy: { bool_param: true } },
      timeout_ms: 5000,
    },
    new Metadata(),
    {},
  );
  const replies: WireInferStreamReply[] = [];
  call.on('data', (r: WireInferStreamReply) => replies.push(r));
  const s = await new Promise<{ code: number }>((resolve) => call.on('status', resolve));
  t.equal(s.code, status.OK);
  t.equal(replies.length, 1);
  t.equal(replies[0]!.index, 0);
  t.same(Buffer.from(replies[0]!.outputs!['text_output']!.bytes_val![0]!).toString(), 'HI');
  // a parameter with no value set is refused as a whole-call error
  const bad = c.makeServerStreamRequest(
    INFER_STREAM_PATH,
    inferStream.requestSerialize,
    inferStream.responseDeserialize,
    { servable_spec: { name: 'streamer', method_name: 'generate' }, instances: [{ items: { text_input: encodeTensor(stringTensor('hi')) } }], parameters: { empty: {} } },
    new Metadata(),
    {},
  );
  bad.on('data', () => t.fail('no reply'));
  bad.on('error', () => undefined);
  const refused = await new Promise<{ code: number; details: string; metadata: Metadata }>((resolve) => bad.on('status', resolve));
  t.equal(refused.code, status.INVALID_ARGUMENT);
  t.match(refused.details, /parameter "empty" has no value set/);
  t.same(refused.metadata.get('actorserve-error-code'), ['E_INVALID_ARGUMENT']);
});

t.test('generate: the text as it arrives; parameters of every kind are sent', async (t) => {
  const client = new Client(server.address, 'streamer', 'echo');
  t.teardown(() => client.close());
  const pieces: string[] = [];
  for await (const piece of client.generate('streamer', 'once upon', { max_tokens: 4, temperature: 0.7, stop: ['\n'], greedy: false })) pieces.push(piece);
  t.same(pieces, ['ONCE UPON']);
  await t.rejects(client.generate('nope', 'x').next(), { code: 'E_UNKNOWN_SERVABLE' });
  await t.rejects(client.generate('streamer', 'x', {}, { method: 'echo' }).next(), { code: 'E_EXTRA_INPUT' }, 'echo takes no text_input');
  await t.rejects(client.generate('streamer', 'x', { bad: { no: 1 } as never }).next(), { code: 'E_INVALID_ARGUMENT', message: /parameter "bad"/ });
});

t.test('a signal aborted before the call: E_CANCELLED, nothing sent', async (t) => {
  const client = new Client(server.address, 'streamer', 'echo');
  t.teardown(() => client.close());
  const ac = new AbortController();
  ac.abort();
  await t.rejects(client.inferStream([{ x: 1 }], { signal: ac.signal }).next(), { name: 'ServingError', code: 'E_CANCELLED' });
});

t.test('the x-request-id sent comes back as a trailer', async (t) => {
  const { inferStream } = protos();
  const c = new GrpcClient(server.address, credentials.createInsecure());
  t.teardown(() => c.close());
  const metadata = new Metadata();
  metadata.set('x-request-id', 'stream-42');
  const call = c.makeServerStreamRequest(
    INFER_STREAM_PATH,
    inferStream.requestSerialize,
    inferStream.responseDeserialize,
    { servable_spec: { name: 'streamer', method_name: 'echo' }, instances: [{ items: { x: encodeTensor(stringTensor('a')) } }] },
    metadata,
    {},
  );
  call.on('data', () => undefined);
  const s = await new Promise<{ code: number; metadata: Metadata }>((resolve) => call.on('status', resolve));
  t.equal(s.code, status.OK);
  t.same(s.metadata.get('x-request-id'), ['stream-42']);
});
