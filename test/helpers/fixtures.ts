/**
 * Servable fixtures for tests: a fresh folder under test/.tmp/ (inside the package, so a
 * fixture's `import { register } from 'actorserve'` resolves to this checkout), filled with
 * servable configs and generated ONNX models.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServingServer } from '../../dist/server.js';
import type { ServableStartConfig } from '../../dist/engine/start-config.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUNDLED_SERVABLES = path.join(ROOT, 'servables');

let counter = 0;

export interface ServableFixture {
  /** The servable directory (parent of servable folders). */
  readonly dir: string;
  /** Writes `<dir>/<servable>/servable_config.ts`. */
  config(servable: string, source: string): void;
  /** Writes a model file into `<dir>/<servable>/<version>/<file>`. */
  model(servable: string, version: number, file: string, bytes: Uint8Array): void;
  remove(): void;
}

export function servableFixture(name: string): ServableFixture {
  const dir = path.join(ROOT, 'test', '.tmp', `${name}-${process.pid}-${Date.now()}-${counter++}`);
  mkdirSync(dir, { recursive: true });
  return {
    dir,
    config(servable, source) {
      mkdirSync(path.join(dir, servable), { recursive: true });
      writeFileSync(path.join(dir, servable, 'servable_config.ts'), source);
    },
    model(servable, version, file, bytes) {
      const versionDir = path.join(dir, servable, String(version));
      mkdirSync(versionDir, { recursive: true });
      writeFileSync(path.join(versionDir, file), bytes);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An engine serving servables of a fixture folder; `stop()` stops it and removes the folder. */
export interface FixtureEngine {
  readonly engine: ServingServer;
  readonly fx: ServableFixture;
  stop(): Promise<void>;
}

/** Starts an engine (its log quiet) on `configs` from `fx`; the folder is removed when the start fails. */
export async function startFixtureEngine(fx: ServableFixture, configs: readonly ServableStartConfig[]): Promise<FixtureEngine> {
  const engine = new ServingServer();
  engine.log = () => {};
  try {
    await engine.startServables(configs);
  } catch (err) {
    fx.remove();
    throw err;
  }
  return {
    engine,
    fx,
    async stop() {
      await engine.stop();
      fx.remove();
    },
  };
}

/** A float32 [2, 2] tensor. */
export function f32(values: readonly number[], shape: readonly number[] = [2, 2]) {
  return { dtype: 'float32' as const, shape: [...shape], data: Float32Array.from(values) };
}

/**
 * The `add` servable config of the engine tests, for add.onnx: `add_common` (x1 + x2), and
 * `slow`, whose stage `sleepy` waits x1[0] ms before the add (deadlines, cancellation).
 */
export const ADD_CONFIG = `import { register, type Tensor } from 'actorserve';
const model = register.declareModel({ modelFile: 'add.onnx' });
export async function sleepy(x: Tensor): Promise<Tensor> {
  await new Promise((r) => setTimeout(r, (x.data as Float32Array)[0]));
  return x;
}
register.method('add_common', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [x1, x2]));
register.method('slow', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(sleepy, [x1]), x2]));
`;
