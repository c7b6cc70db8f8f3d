// Request bytes that are not valid protobuf, sent with an identity serializer: every service
// answers INVALID_ARGUMENT (not grpc-js's INTERNAL) naming the rpc, a stream ends with that
// status, and the server answers valid calls afterwards.
import { Client, Metadata, type ServiceError, credentials, status } from '@grpc/grpc-js';
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { KSERVE_PATH, PREDICT_PATH, PREDICT_STREAM_PATH } from '../../../dist/transports/grpc/proto.js';
import { type EngineFixture, startEngine } from './fixtures/engine.js';
import { RawClient, wireF32 } from './fixtures/raw.js';

let fx: EngineFixture;
let server: GrpcServer;
let client: Client;

t.before(async () => {
  fx = await startEngine('grpc-malformed', { only: ['add'] });
  server = await startGrpcServer(fx.engine, '127.0.0.1:0');
  client = new Client(server.address, credentials.createInsecure());
});
t.teardown(async () => {
  client?.close();
  await server?.close();
  await fx?.stop();
});

/** The tag of field 1, length-delimited, and then nothing: the length is missing. */
const TRUNCATED = Buffer.from([0x0a]);
const identity = (b: Buffer): Buffer => b;

function unary(path: string, bytes: Buffer): Promise<ServiceError> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, bytes, new Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
      err ? resolve(err) : reject(new Error(`${path} answered a malformed request`)),
    );
  });
}

for (const path of [PREDICT_PATH, KSERVE_PATH.ModelInfer, KSERVE_PATH.ModelMetadata]) {
  t.test(`${path}: undecodable bytes are INVALID_ARGUMENT`, async (t) => {
    const err = await unary(path, TRUNCATED);
    t.equal(err.code, status.INVALID_ARGUMENT, err.details);
    t.match(err.details, `${path}: the request message is not valid protobuf`);
    t.same(err.metadata.get('actorserve-error-code'), ['E_INVALID_ARGUMENT']);
  });
}

for (const path of [PREDICT_STREAM_PATH, KSERVE_PATH.ModelStreamInfer]) {
  t.test(`${path}: an undecodable message ends the stream with INVALID_ARGUMENT`, async (t) => {
    const call = client.makeBidiStreamRequest(path, identity, identity, new Metadata(), { deadline: Date.now() + 10_000 });
    const ended = new Promise<ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => t.fail('no reply expected'));
    call.write(TRUNCATED);
    const err = await ended;
    t.equal(err.code, status.INVALID_ARGUMENT, err.details);
    t.match(err.details, 'the request message is not valid protobuf');
  });
}

t.test('valid calls are answered afterwards', async (t) => {
  const raw = new RawClient(server.address);
  t.teardown(() => raw.close());
  const { reply } = await raw.predict({
    servable_spec: { name: 'add', method_name: 'add_common', version_number: 0 },
    instances: [{ items: { x1: wireF32([1, 2, 3, 4]), x2: wireF32([1, 1, 1, 1]) } }],
  });
  t.same(reply.error_msg ?? [], []);
  t.equal(reply.instances?.length, 1);
});
