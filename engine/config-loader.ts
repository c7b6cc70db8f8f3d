/**
 * Loads a servable_config.ts (TypeScript, no build step: tsx compiles it on import) and
 * returns what it declared, with every function stage resolved to the config's export name so
 * that stage workers can import the same module and find the function.
 */
import { register as registerModuleHooks } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register as registerTsx } from 'tsx/esm/api';
import { LOAD_PARAM, type OwnPackageHookData } from './own-package-hooks.js';
import { ServingError } from './errors.js';
import { loadErrorDetail } from './load-error.js';
import type { MethodGraph } from './method-graph.js';
import { type Model, type ServableDeclarations, type StageFunction, collectDeclarations, newDeclarations } from './register.js';

export interface LoadedConfig {
  readonly configPath: string;
  readonly models: readonly Model[];
  readonly methods: readonly MethodGraph[];
}

let queue: Promise<unknown> = Promise.resolve();

let hooksRegistered = false;
let loads = 0;

/**
 * Registers, once per thread (stage workers import configs too), the hooks configs need:
 * own-package-hooks.ts (`import ... from 'actorserve'` resolves to this running copy of the
 * package; a config's own modules get a fresh instance per load) and tsx (compiles `.ts`).
 * tsx runs without a namespace: a namespaced `tsImport` evaluates a fresh copy of everything
 * the config imports, this whole package included (some 380 modules, about 1 s of CPU per
 * load and per stage thread).
 */
function registerConfigHooks(): void {
  if (hooksRegistered) return;
  hooksRegistered = true;
  registerModuleHooks<OwnPackageHookData>('./own-package-hooks.js', { parentURL: import.meta.url, data: { insidePackageURL: import.meta.url } });
  registerTsx();
}

/**
 * Imports a config module afresh: the config and the modules of its own folder it imports are
 * evaluated anew each call (a reload sees edited files); packages, this one included, are the
 * ones already loaded.
 */
export function importConfigModule(configPath: string): Promise<Record<string, unknown>> {
  registerConfigHooks();
  const url = pathToFileURL(configPath);
  url.searchParams.set(LOAD_PARAM, String(++loads));
  return import(url.href) as Promise<Record<string, unknown>>;
}

export function loadServableConfig(configPath: string, servableName: string): Promise<LoadedConfig> {
  const run = queue.then(() => load(configPath, servableName));
  queue = run.catch(() => undefined);
  return run;
}

async function load(configPath: string, servableName: string): Promise<LoadedConfig> {
  const declared: ServableDeclarations = newDeclarations();
  let exports: Record<string, unknown> = {};
  try {
    await collectDeclarations(declared, async () => {
      exports = await importConfigModule(configPath);
    });
  } catch (err) {
    throw new ServingError('E_CONFIG_INVALID', `servable '${servableName}': ${loadFailure(configPath, err)}`, { cause: err });
  }
  if (declared.methods.length === 0) {
    throw new ServingError('E_CONFIG_INVALID', `servable '${servableName}': ${configPath} declares no method`);
  }
  const exportNames = new Map<unknown, string>();
  for (const [name, value] of Object.entries(exports)) if (typeof value === 'function') exportNames.set(value, name);

  const methods = declared.methods.map((graph) => {
    const functions = declared.stageFunctions.get(graph.name) ?? new Map<number, StageFunction>();
    const stages = graph.stages.map((stage, i) => {
      if (stage.kind !== 'function') {
        if (!declared.models.some((m) => m.key === stage.modelKey)) {
          throw new ServingError('E_CONFIG_INVALID', `servable '${servableName}', method '${graph.name}': model '${stage.modelKey}' is not declared in this config`);
        }
        return stage;
      }
      const fn = functions.get(i + 1);
      const exportName = exportNames.get(fn);
      if (!exportName) {
        throw new ServingError(
          'E_CONFIG_INVALID',
          `servable '${servableName}', method '${graph.name}', stage ${i + 1}: function '${fn?.name ?? '?'}' must be exported from servable_config.ts so stage workers can find it`,
        );
      }
      return { ...stage, functionName: exportName };
    });
    return { ...graph, stages };
  });
  return { configPath, models: declared.models, methods };
}

/**
 * What went wrong importing a config, as one line (the CLI prints a message's first line).
 * Compile errors arrive as a head line ("Transform failed with 1 error:" from tsx's esbuild,
 * "Unable to compile TypeScript:" where ts-node compiles instead) followed by one line per
 * error with its location, so those lines are what this line must carry.
 */
export function loadFailure(configPath: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const locations = message.split('\n').slice(1).filter((line) => COMPILE_ERROR_LINE.test(line));
  if (locations.length > 0) return `${configPath} does not compile: ${locations.join('; ')}`;
  const [firstLine = ''] = message.split('\n');
  const missing = /^Cannot find (?:package|module) '([^']+)'/.exec(firstLine)?.[1];
  if (missing !== undefined && !missing.startsWith('.') && !missing.startsWith('/')) {
    // 'actorserve' itself always resolves (own-package-hooks.ts); any other package is the folder's own
    return `loading ${configPath} failed: ${firstLine}; install it in a node_modules folder in or above ${dirname(configPath)}`;
  }
  return `loading ${configPath} failed: ${loadErrorDetail(err, configPath)}`;
}

/** esbuild's `file:20:19: ERROR: text`, or tsc's `file(20,19): error TS1005: text`. */
const COMPILE_ERROR_LINE = /:\d+:\d+: ERROR: |\(\d+,\d+\): error TS\d+/;
