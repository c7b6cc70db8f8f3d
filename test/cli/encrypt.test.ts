// `actorserve encrypt` and serving the bundled `add` servable encrypted from the CLI with a key file.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { ensureExampleModels } from '../../dist/servables/generate-models.js';
import { isEncryptedModel } from '../../dist/engine/model-crypto.js';
import { BUNDLED_SERVABLES, ROOT, servableFixture } from '../helpers/fixtures.js';
import { BIN, REST_LISTENING, runCli } from '../helpers/cli.js';

const fx = servableFixture('encrypt-cli');
t.teardown(() => fx.remove());
const key = randomBytes(32);
const keyFile = path.join(fx.dir, 'add.key');
writeFileSync(keyFile, key);

function listAll(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e);
      try {
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else out.set(p, st.mtimeMs);
      } catch {
        /* vanished */
      }
    }
  };
  walk(dir);
  return out;
}

t.test('encrypt writes the container; bad keys and missing files are one-line errors', async (t) => {
  await ensureExampleModels(BUNDLED_SERVABLES);
  const plain = path.join(BUNDLED_SERVABLES, 'add', '1', 'tensor_add.onnx');
  mkdirSync(path.join(fx.dir, 'add', '1'), { recursive: true });
  copyFileSync(path.join(BUNDLED_SERVABLES, 'add', 'servable_config.ts'), path.join(fx.dir, 'add', 'servable_config.ts'));
  const out = path.join(fx.dir, 'add', '1', 'tensor_add.onnx');
  const r = spawnSync(process.execPath, [BIN, 'encrypt', '--key-file', keyFile, plain, out], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /wrote .*tensor_add\.onnx \(AES-GCM, \d+ bytes\)/);
  t.ok(isEncryptedModel(readFileSync(out)), 'the output is an encrypted container');
  t.notOk(r.stdout.includes(key.toString('hex')) || r.stderr.includes(key.toString('hex')), 'the key is never printed');

  writeFileSync(path.join(fx.dir, 'short.key'), randomBytes(7));
  const bad = spawnSync(process.execPath, [BIN, 'encrypt', '--key-file', path.join(fx.dir, 'short.key'), plain, path.join(fx.dir, 'x.enc')], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /holds 7 bytes; a key is 16, 24 or 32 raw bytes\n/);
  writeFileSync(path.join(fx.dir, 'hex.key'), `${randomBytes(32).toString('hex')}\n`);
  const hex = spawnSync(process.execPath, [BIN, 'encrypt', '--key-file', path.join(fx.dir, 'hex.key'), plain, path.join(fx.dir, 'x.enc')], { encoding: 'utf8' });
  t.equal(hex.status, 2);
  t.match(hex.stderr, /holds 65 bytes; a key is 16, 24 or 32 raw bytes \(it looks like hex text: store the raw bytes/, 'hex text gets a hint');
  const typo = spawnSync(process.execPath, [BIN, 'encrypt', '--keyfile', keyFile, plain, path.join(fx.dir, 'x.enc')], { encoding: 'utf8' });
  t.equal(typo.status, 2, 'a mistyped flag is a usage error');
  t.match(typo.stderr, "Unknown option '--keyfile' (did you mean '--key-file'?)");
  const missing = spawnSync(process.execPath, [BIN, 'encrypt', '--key-file', keyFile, path.join(fx.dir, 'nope.onnx'), path.join(fx.dir, 'x.enc')], { encoding: 'utf8' });
  t.equal(missing.status, 2);
  t.match(missing.stderr, /cannot read .*nope\.onnx: ENOENT/);
});

t.test('serve --dec-key-file serves the encrypted add servable; no plaintext file appears', async (t) => {
  const tmpBefore = listAll(os.tmpdir());
  const dirBefore = listAll(fx.dir);
  const p = runCli(['serve', '--servable-dir', fx.dir, '--servables', 'add', '--dec-key-file', keyFile, '--rest-address', '127.0.0.1:0', '--no-grpc']);
  const [, port] = await p.waitFor(REST_LISTENING, 60_000);
  t.ok(port, `serving (${p.output().split('\n').slice(-3).join(' | ')})`);
  const r = await fetch(`http://127.0.0.1:${port}/model/add:add_common`, {
    method: 'POST',
    body: JSON.stringify({ instances: { x1: [[1, 2], [3, 4]], x2: [[1, 1], [1, 1]] } }),
  });
  t.same(await r.json(), { instances: [{ y: [[2, 3], [4, 5]] }] });
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0);

  // The first 40 bytes of the plaintext model (IR version, producer, graph header).
  const marker = readFileSync(path.join(BUNDLED_SERVABLES, 'add', '1', 'tensor_add.onnx')).subarray(0, 40);
  const fresh = (before: Map<string, number>, dir: string) =>
    [...listAll(dir)].filter(([p, m]) => before.get(p) !== m).map(([p]) => p);
  // The checkout itself may live under the temp folder (CI clones into /tmp), and other test
  // files write plaintext fixtures under test/.tmp at the same time: outside this servable
  // folder, only paths outside the checkout are checked.
  const tmpFresh = fresh(tmpBefore, os.tmpdir()).filter((p) => !p.startsWith(ROOT + path.sep));
  const suspicious = [...tmpFresh, ...fresh(dirBefore, fx.dir)].filter((p) => {
    try {
      return readFileSync(p).includes(marker);
    } catch {
      return false;
    }
  });
  t.same(suspicious, [], 'no new file holds the plaintext model');
  t.notOk(p.output().includes(key.toString('hex')), 'the key is not in the logs');
});
