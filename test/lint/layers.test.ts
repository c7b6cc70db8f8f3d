// The layer rules (.dependency-cruiser.cjs) can fail: dependency-cruiser, run the way
// `npm run lint` runs it, over small trees written to a temp folder: a clean layered tree
// passes, and each kind of violation is reported by the rule made for it.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DEPCRUISE = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');

/** A tree of files by relative path. */
type Tree = Record<string, string>;

/** One module per layer, each importing only the layers below it (type-only imports included). */
const CLEAN: Tree = {
  'tsconfig.lint.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  'engine/tensor.ts': `export interface Tensor { readonly data: Float32Array }\n`,
  'engine/errors.ts': `import type { Tensor } from './tensor.js';\nexport class ServingError extends Error { tensor?: Tensor }\n`,
  'native/index.ts': `import type { Tensor } from '../engine/tensor.js';\nexport function parse(bytes: Uint8Array, _t?: Tensor): number { return bytes.length; }\n`,
  'actors/runtime.ts': `import type { Tensor } from '../engine/tensor.js';\nimport { parse } from '../native/index.js';\nexport const run = (t: Tensor): number => parse(new Uint8Array(t.data.buffer));\n`,
  'facade/server.ts': `import { run } from '../actors/runtime.js';\nimport { ServingError } from '../engine/errors.js';\nexport class Server { infer = run; fail = ServingError }\n`,
  'transports/rest/server.ts': `import type { Server } from '../../facade/server.js';\nexport function startRest(s: Server): Server { return s; }\n`,
  'cli/main.ts': `import { startRest } from '../transports/rest/server.js';\nimport { Server } from '../facade/server.js';\nexport const main = () => startRest(new Server());\n`,
  'server.ts': `import { Server } from './facade/server.js';\nimport { startRest } from './transports/rest/server.js';\nexport class ServingServer extends Server { rest = () => startRest(this) }\n`,
  'index.ts': `export { Server } from './facade/server.js';\nexport { ServingServer } from './server.js';\nexport { startRest } from './transports/rest/server.js';\n`,
  'servables/generate.ts': `import type { Tensor } from '../engine/tensor.js';\nexport const model = (t: Tensor) => t;\n`,
  'dist/engine/tensor.js': `export {};\n`,
  'test/tensor.test.ts': `import '../dist/engine/tensor.js';\nimport { run } from '../actors/runtime.js';\nimport { main } from '../cli/main.js';\nexport { run, main };\n`,
  'perf/bench.ts': `import { main } from '../cli/main.js';\nimport { run } from '../actors/runtime.js';\nexport { run, main };\n`,
};

/** One reported violation: the rule and the modules it names, in order (a cycle names several). */
interface Violation {
  readonly rule: string;
  readonly modules: string[];
}

const exec = promisify(execFile);

/**
 * Writes CLEAN plus `changes` to a fresh temp folder and runs depcruise there exactly as
 * `npm run lint` does (same config, default `err` output): its exit code and violations.
 */
async function cruise(changes: Tree): Promise<{ exitCode: number; violations: Violation[]; output: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'actorserve-layers-'));
  try {
    for (const [file, text] of Object.entries({ ...CLEAN, ...changes })) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    }
    let exitCode = 0;
    let output: string;
    try {
      const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }; // plain text to parse
      ({ stdout: output } = await exec(process.execPath, [DEPCRUISE, '--config', CONFIG, '.'], { cwd: dir, env }));
    } catch (err) {
      // depcruise exits with the number of errors it found; its report is still on stdout.
      const failed = err as { code?: unknown; stdout?: unknown };
      if (typeof failed.code !== 'number' || typeof failed.stdout !== 'string') throw err;
      exitCode = failed.code;
      output = failed.stdout;
    }
    // `  error <rule>: a.ts → b.ts` (a cycle continues over the next lines: `→ c.ts → a.ts`).
    const violations = output
      .split(/^\s*error /m)
      .slice(1)
      .map((block) => {
        const colon = block.indexOf(':');
        const names = (block.slice(colon + 1).split('\n\n')[0] ?? '').split('→');
        return { rule: block.slice(0, colon), modules: names.map((m) => m.trim()).filter(Boolean) };
      });
    return { exitCode, violations, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each case: what it adds to the clean tree, the rule that must report it and the import it must name. */
const BAD: [name: string, changes: Tree, rule: string, edge: [from: string, to: string]][] = [
  [
    'engine/ importing transports/ (type-only)',
    { 'engine/tensor.ts': `import type { startRest } from '../transports/rest/server.js';\nexport interface Tensor { readonly data: Float32Array; s?: typeof startRest }\n` },
    'engine-is-the-domain',
    ['engine/tensor.ts', 'transports/rest/server.ts'],
  ],
  [
    'engine/ loading a transport with import()',
    { 'engine/loader.ts': `export const load = () => import('../transports/rest/server.js');\n` },
    'engine-is-the-domain',
    ['engine/loader.ts', 'transports/rest/server.ts'],
  ],
  [
    'transports/ importing actors/',
    { 'transports/rest/predict.ts': `import type { run } from '../../actors/runtime.js';\nexport type Run = typeof run;\n` },
    'transports-not-actors',
    ['transports/rest/predict.ts', 'actors/runtime.ts'],
  ],
  [
    'the facade importing a transport',
    { 'facade/rest.ts': `export { startRest } from '../transports/rest/server.js';\n` },
    'facade-below-transports',
    ['facade/rest.ts', 'transports/rest/server.ts'],
  ],
  [
    'a cycle inside one layer',
    {
      'engine/a.ts': `import { b } from './b.js';\nexport const a = () => b;\n`,
      'engine/b.ts': `import type { a } from './a.js';\nexport const b = (x?: typeof a) => x;\n`,
    },
    'no-circular',
    ['engine/a.ts', 'engine/b.ts'],
  ],
  [
    'native/ importing the runtime',
    {
      'actors/limits.ts': `export const MAX_BATCH = 64;\n`,
      'native/index.ts': `import { MAX_BATCH } from '../actors/limits.js';\nexport function parse(bytes: Uint8Array): number { return Math.min(bytes.length, MAX_BATCH); }\n`,
    },
    'native-on-engine',
    ['native/index.ts', 'actors/limits.ts'],
  ],
  [
    'a transport importing the top-level server',
    { 'transports/grpc/server.ts': `import type { ServingServer } from '../../server.js';\nexport const startGrpc = (s: ServingServer) => s;\n` },
    'transports-below-cli',
    ['transports/grpc/server.ts', 'server.ts'],
  ],
  [
    'product code importing the compiled dist/ tree',
    { 'cli/dist-user.ts': `export * from '../dist/engine/tensor.js';\n` },
    'product-not-tests-or-build',
    ['cli/dist-user.ts', 'dist/engine/tensor.js'],
  ],
];

// Two runs (each is a node process loading TypeScript): the clean tree, and the clean tree with
// every bad change at once (each case is checked by its own rule and import below).
const [clean, broken] = await Promise.all([cruise({}), cruise(Object.assign({}, ...BAD.map(([, changes]) => changes)) as Tree)]);

t.test('a tree whose imports point down passes', async (t) => {
  t.same(clean.violations, [], 'no violations');
  t.equal(clean.exitCode, 0, 'depcruise exits 0');
});

t.test('a violating tree fails `npm run lint`', async (t) => {
  t.ok(broken.exitCode > 0, `depcruise exits non-zero (${broken.exitCode})`);
  t.equal(broken.exitCode, broken.violations.length, 'one error per reported violation');
});

for (const [name, , rule, [from, to]] of BAD) {
  t.test(`reported: ${name}`, async (t) => {
    const found = broken.violations.some(
      (v) => v.rule === rule && v.modules.some((m, i) => m === from && v.modules[i + 1] === to),
    );
    t.ok(found, `${rule}: ${from} → ${to}`, { output: broken.output });
  });
}
