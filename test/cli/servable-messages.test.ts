// The messages of a servable folder set up wrong, as `actorserve serve` prints them: each says
// how to set it up (servable_config.js, a v1 folder, no version folder, a stage with several
// outputs without outputsCount, an encrypted model without its key).
import t, { type Test } from 'tap';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addModel } from '../../dist/servables/example-models.js';
import { encryptModel } from '../../dist/engine/model-crypto.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

const fx = servableFixture('cli-servable-messages');
t.teardown(() => fx.remove());

/** `serve` of one servable that fails to start: its exit code and output. */
async function startFails(t: Test, servable: string, extra: string[] = []): Promise<string> {
  const p = runCli(['serve', '--servable-dir', fx.dir, '--servables', servable, '--rest-address', '127.0.0.1:0', '--no-grpc', ...extra]);
  t.equal(await p.exited, 1, servable);
  return p.output();
}

t.test('servable_config.js and version folders', async (t) => {
  // servable_config.js: actorserve reads servable_config.ts only
  fx.config('js', ADD_CONFIG);
  renameSync(path.join(fx.dir, 'js', 'servable_config.ts'), path.join(fx.dir, 'js', 'servable_config.js'));
  const js = runCli(['serve', '--servable-dir', fx.dir, '--servables', 'js', '--no-grpc']);
  t.equal(await js.exited, 2);
  t.match(js.output(), /servable_config\.ts does not exist \(found servable_config\.js: actorserve loads only servable_config\.ts, .*rename it to servable_config\.ts\)/);

  // a v1 folder: version folders are plain numbers
  fx.config('vfolder', ADD_CONFIG);
  mkdirSync(path.join(fx.dir, 'vfolder', 'v1'));
  writeFileSync(path.join(fx.dir, 'vfolder', 'v1', 'add.onnx'), addModel({ batch: 'N' }));
  t.match(await startFails(t, 'vfolder'), /no numbered version folder under .*vfolder, but the config declares models \(version folders are plain numbers: rename v1\/ to 1\/\)/);
  // no version folder at all
  fx.config('noversion', ADD_CONFIG);
  t.match(await startFails(t, 'noversion'), /put the model files in a version folder: .*noversion\/1\//);

});

t.test('a method returning fewer values than it declares; an encrypted model without its key', async (t) => {
  // a stage with two outputs added without outputsCount
  fx.config('outputs', `import { register, type Tensor } from 'actorserve';
export function split(x: Tensor): Tensor[] { return [x, x]; }
register.method('m', { outputs: ['a', 'b'] }, (x) => register.addStage(split, [x]));
`);
  t.match(await startFails(t, 'outputs'), /returns 1 values but declares 2 outputs \(a stage with several outputs needs addStage\(f, args, \{ outputsCount: N \}\)/);

  // an encrypted model without a key: the CLI names its flag, not the library option
  fx.config('sealed', ADD_CONFIG);
  fx.model('sealed', 1, 'add.onnx', encryptModel(addModel({ batch: 'N' }), Buffer.alloc(32, 7)));
  const sealed = await startFails(t, 'sealed');
  t.match(sealed, /the file is encrypted: give its key with --dec-key-file FILE/);
  t.notMatch(sealed, /ServableStartConfig/);
});
