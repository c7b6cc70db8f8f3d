// native/index.ts finds the addon from dist/native/, falls back to JS when told to (or when
// the addon is missing), and the addon loads in worker threads (device actors use them).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import * as native from '../../dist/native/index.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/native/index.js');

t.test('the addon is built and loaded (npm install builds it)', async (t) => {
  t.equal(native.nativeLoaded, true, `loaded (${native.nativeLoadError ?? 'no error'})`);
  t.equal(native.nativeLoadError, undefined);
  t.ok(native.native, 'the raw native functions are exported');
  t.equal(native.writeFloat32Json, native.native!.writeFloat32Json, 'top-level functions are the native ones');
});

t.test('ACTORSERVE_NO_NATIVE=1 gives the JS fallback, which works', async (t) => {
  const script = `
    const m = await import(${JSON.stringify(MODULE)});
    const r = m.parseInstances(new TextEncoder().encode('{"instances":{"x":[1.5,2]}}'));
    console.log(JSON.stringify({
      loaded: m.nativeLoaded, error: m.nativeLoadError, same: m.parseInstances === m.js.parseInstances, raw: m.native === undefined,
      data: Array.from(r.instances[0].x.data), text: m.writeFloat32Json(Float32Array.of(3.2, 2), [2]),
      half: Array.from(m.float32ToFloat16(Float32Array.of(1, -2))),
    }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ACTORSERVE_NO_NATIVE: '1' },
    encoding: 'utf8',
  });
  t.same(JSON.parse(out), {
    loaded: false,
    error: 'disabled by ACTORSERVE_NO_NATIVE=1',
    same: true,
    raw: true,
    data: [1.5, 2],
    text: '[3.2,2.0]',
    half: [0x3c00, 0xc000],
  });
});

t.test('the addon loads and works in several worker threads at once', async (t) => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(MODULE)}).then((m) => {
      let sum = 0;
      for (let i = 0; i < 200; i++) {
        const r = m.native.parseInstances(new TextEncoder().encode('{"instances":[{"x":[[1,2],[3,' + i + ']]}]}'));
        sum += r.instances[0].x.data[3];
      }
      parentPort.postMessage({ loaded: m.nativeLoaded, sum, text: m.writeFloat32Json(Float32Array.of(0.1), [1]) });
    });`;
  const results = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<unknown>((resolve, reject) => {
          const w = new Worker(code, { eval: true });
          w.once('message', (m) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  for (const r of results) t.same(r, { loaded: true, sum: 19900, text: '[0.1]' });
});
