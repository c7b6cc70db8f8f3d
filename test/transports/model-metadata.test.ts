// Model metadata over REST (GET /model/<servable>[/version/<n>]) and gRPC
// (actorserve.v1.ActorServe/GetModelMetadata), on a real server on loopback.
import { Client, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { Client as ActorServeClient } from '../../dist/transports/grpc/client.js';
import { ServingError } from '../../dist/engine/errors.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel, subModel } from '../../dist/servables/example-models.js';
import { ERROR_CODE_TRAILER, MODEL_METADATA_PATH, protos, type WireModelMetadataReply, type WireModelMetadataRequest } from '../../dist/transports/grpc/proto.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('model-metadata');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
fx.model('add', 2, 'add.onnx', subModel({ batch: 'N' }));
const engine = new ServingServer();
engine.log = () => {};
let base = '';
let grpcAddress = '';
t.before(async () => {
  await engine.startServables([
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', versionNumber: 1 }),
    new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', versionNumber: 2 }),
  ]);
  base = `http://127.0.0.1:${(await engine.startRestfulServer('127.0.0.1:0')).port}`;
  grpcAddress = (await engine.startGrpcServer('127.0.0.1:0')).address;
});
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

const MODEL_INPUT = (name: string) => ({ name, dtype: 'float32', dims: ['N', 2, 2] });

t.test('REST: GET /model/<servable> describes the newest version, /version/<n> the one named', async (t) => {
  const newest = await fetch(`${base}/model/add`);
  t.equal(newest.status, 200);
  t.match(newest.headers.get('content-type'), /^application\/json/);
  const body = (await newest.json()) as { name: string; version: number; versions: number[]; methods: { name: string; inputs: unknown[]; outputs: unknown[] }[] };
  t.same(body.versions, [1, 2]);
  t.equal(body.version, 2);
  t.equal(body.name, 'add');
  const common = body.methods.find((m) => m.name === 'add_common');
  t.same(common, { name: 'add_common', inputs: [MODEL_INPUT('x1'), MODEL_INPUT('x2')], outputs: [{ name: 'y' }] });
  const slow = body.methods.find((m) => m.name === 'slow');
  t.same(slow?.inputs, [{ name: 'x1' }, MODEL_INPUT('x2')], 'an input feeding a function stage has no dtype or dims');
  t.match(await (await fetch(`${base}/model/add/version/1`)).json(), { name: 'add', version: 1, versions: [1, 2] });
  t.match(await (await fetch(`${base}/model/add/version/0`)).json(), { version: 2 }, 'version 0 is the newest');
});

t.test('REST: unknown servables and versions are 404; POST under /model is still predict', async (t) => {
  const unknown = await fetch(`${base}/model/nope`);
  t.equal(unknown.status, 404);
  t.match(await unknown.json(), { error_msg: /servable 'nope' is not loaded \(loaded: add\)/ });
  const version = await fetch(`${base}/model/add/version/9`);
  t.equal(version.status, 404);
  t.match(await version.json(), { error_msg: /no loaded version 9/ });
  const bad = await fetch(`${base}/model/add/version/x`);
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error_msg: /version "x" is not an integer/ });
  const post = await fetch(`${base}/model/add`, { method: 'POST', body: '{}' });
  t.equal(post.status, 400);
  t.match(await post.json(), { error_msg: /names no method/ }, 'a predict URL without a method is still the predict route');
  const getPredict = await fetch(`${base}/model/add:add_common`);
  t.equal(getPredict.status, 405);
  t.equal(getPredict.headers.get('allow'), 'POST');
  t.equal((await fetch(`${base}/model/add`, { method: 'DELETE' })).status, 405);
});

function metadataCall(request: WireModelMetadataRequest): Promise<WireModelMetadataReply> {
  const client = new Client(grpcAddress, credentials.createInsecure());
  const { modelMetadata } = protos();
  return new Promise<WireModelMetadataReply>((resolve, reject) => {
    client.makeUnaryRequest(MODEL_METADATA_PATH, modelMetadata.requestSerialize, modelMetadata.responseDeserialize, request, new Metadata(), {}, (err, value) =>
      err ? reject(err) : resolve(value!),
    );
  }).finally(() => client.close());
}

t.test('gRPC: GetModelMetadata on the actorserve.v1 service', async (t) => {
  const reply = await metadataCall({ name: 'add', version_number: 0 });
  t.equal(reply.name, 'add');
  t.equal(reply.version, 2);
  t.same(reply.versions, [1, 2]);
  const slow = reply.methods?.find((m) => m.name === 'slow');
  t.same(slow, {
    name: 'slow',
    inputs: [
      { name: 'x1', dtype: '', dims: [], has_dims: false },
      { name: 'x2', dtype: 'float32', dims: [-1, 2, 2], has_dims: true },
    ],
    outputs: [{ name: 'y', dtype: '', dims: [], has_dims: false }],
  });
  t.equal((await metadataCall({ name: 'add', version_number: 1 })).version, 1);
  const err = (await metadataCall({ name: 'nope', version_number: 0 }).catch((e: unknown) => e)) as ServiceError;
  t.equal(err.code, status.NOT_FOUND);
  t.match(err.details, /servable 'nope' is not loaded/);
  t.same(err.metadata.get(ERROR_CODE_TRAILER), ['E_UNKNOWN_SERVABLE']);
  const version = (await metadataCall({ name: 'add', version_number: 5 }).catch((e: unknown) => e)) as ServiceError;
  t.equal(version.code, status.NOT_FOUND);
  t.same(version.metadata.get(ERROR_CODE_TRAILER), ['E_UNKNOWN_VERSION']);
});

t.test('the TypeScript client reads the metadata of its servable and version', async (t) => {
  const client = new ActorServeClient(grpcAddress, 'add', 'add_common', { versionNumber: 1 });
  t.teardown(() => client.close());
  const m = await client.metadata();
  t.same(m.versions, [1, 2]);
  t.equal(m.version, 1);
  t.same(
    m.methods.find((x) => x.name === 'slow'),
    { name: 'slow', inputs: [{ name: 'x1' }, { name: 'x2', dtype: 'float32', dims: [-1, 2, 2] }], outputs: ['y'] },
  );
  const unknown = new ActorServeClient(grpcAddress, 'nope', 'm');
  t.teardown(() => unknown.close());
  const err = await unknown.metadata().catch((e: unknown) => e);
  t.ok(err instanceof ServingError);
  t.match(err, { code: 'E_UNKNOWN_SERVABLE', message: /servable 'nope' is not loaded/ });
});
