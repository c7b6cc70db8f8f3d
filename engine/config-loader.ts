/**
 * Loads a servable_config.ts (TypeScript, no build step: tsx compiles it on import) and
 * returns what it declared, with every function stage resolved to the config's export name so
 * that stage workers can import the same module and find the function.
 */
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
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

/** Imports a config module in a fresh namespace (a new evaluation each call). */
export function importConfigModule(configPath: string): Promise<Record<string, unknown>> {
  return tsImport(pathToFileURL(configPath).href, import.meta.url) as Promise<Record<string, unknown>>;
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
    throw new ServingError('E_CONFIG_INVALID', `servable '${servableName}': loading ${configPath} failed: ${loadErrorDetail(err, configPath)}`, { cause: err });
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
