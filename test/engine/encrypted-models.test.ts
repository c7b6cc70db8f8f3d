// Encrypted model files: decrypted in memory with decKey/decMode; clear errors otherwise.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { decryptModel, encryptModel } from '../../dist/engine/model-crypto.js';
import { addModel } from '../../dist/servables/example-models.js';
import { f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('encrypted');
const key = randomBytes(32);
const plain = addModel({ batch: 'N' });
const CONFIG = `import { register } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx.enc' });
register.method('add', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));`;
for (const mode of ['AES-GCM', 'AES-CBC'] as const) {
  fx.config(mode, CONFIG);
  fx.model(mode, 1, 'add.onnx.enc', encryptModel(plain, key, mode));
}
const tampered = encryptModel(plain, key, 'AES-GCM');
tampered[tampered.length - 10]! ^= 1;
fx.config('tampered', CONFIG);
fx.model('tampered', 1, 'add.onnx.enc', tampered);
t.teardown(() => fx.remove());

const input = [{ x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) }];

for (const mode of ['AES-GCM', 'AES-CBC'] as const) {
  t.test(`${mode}: the right key serves the model`, async (t) => {
    const engine = new ServingServer();
    engine.log = () => {};
    t.teardown(() => engine.stop());
    await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: mode, decKey: key, decMode: mode }));
    const [o] = await engine.infer(mode, 'add', input);
    t.same([...(o!.y!.data as Float32Array)], [2, 3, 4, 5]);
  });
}

const failures: [string, string, Partial<ConstructorParameters<typeof ServableStartConfig>[0]>, RegExp][] = [
  ['wrong key', 'AES-GCM', { decKey: randomBytes(32) }, /authentication tag mismatch/],
  ['wrong mode', 'AES-GCM', { decKey: key, decMode: 'AES-CBC' }, /encrypted with AES-GCM, but decMode is AES-CBC/],
  ['tampered ciphertext', 'tampered', { decKey: key }, /authentication tag mismatch/],
  ['no key for an encrypted file', 'AES-GCM', {}, /the file is encrypted: set decKey/],
];
for (const [name, servable, options, message] of failures) {
  t.test(`${name}: a load error naming the servable and file, without the key`, async (t) => {
    const engine = new ServingServer();
    engine.log = () => {};
    t.teardown(() => engine.stop());
    const err = (await engine
      .startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: servable, ...options }))
      .catch((e: unknown) => e)) as Error & { code: string };
    t.equal(err.code, 'E_LOAD_FAILED');
    t.match(err.message, message);
    t.match(err.message, new RegExp(`servable '${servable}'.*add\\.onnx\\.enc`));
    t.notOk(err.message.includes(key.toString('hex')) || err.message.includes(key.toString('base64')), 'the key is not in the message');
  });
}

t.test('the container round-trips and rejects truncation', async (t) => {
  const box = encryptModel(plain, key, 'AES-GCM');
  t.same(decryptModel(box, key, 'AES-GCM'), Buffer.from(plain));
  t.throws(() => decryptModel(box.subarray(0, 20), key, 'AES-GCM'), /truncated|tag mismatch/);
  t.throws(() => decryptModel(Buffer.from('not a model'), key, 'AES-GCM'), /bad magic/);
});
