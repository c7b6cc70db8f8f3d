/**
 * The wording of an error thrown while a servable config was imported: a misspelled register
 * API name is named with the nearest export, and the line of the config that threw is added.
 */
import { closest } from './option-schema.js';
import * as registerApi from './register.js';

/**
 * `register.methd is not a function` (ESM) or `import_actorserve.register.methd is not a
 * function` (esbuild's name for the import when tsx compiles the config to CommonJS).
 */
const MISSING_REGISTER_NAME = /(?:^|[\s.(])register\.([A-Za-z_$][\w$]*)\)? is not a (?:function|constructor)/;

export function loadErrorDetail(err: unknown, configPath: string): string {
  let detail = err instanceof Error ? err.message : String(err);
  const missing = MISSING_REGISTER_NAME.exec(detail);
  if (missing) {
    const name = missing[1]!;
    const guess = closest(name, Object.keys(registerApi));
    detail = `register has no '${name}'${guess ? `; did you mean '${guess}'?` : ' (a servable config declares with declareModel, method and addStage)'}`;
  }
  const at = err instanceof Error ? configLine(err.stack, configPath) : undefined;
  return at ? `${detail} (${at})` : detail;
}

/** `servable_config.ts:13:10`: the config's frame in a stack, if it has one. */
function configLine(stack: string | undefined, configPath: string): string | undefined {
  const file = configPath.split(/[\\/]/).pop()!;
  for (const line of stack?.split('\n') ?? []) {
    const i = line.indexOf(configPath);
    if (i < 0) continue;
    const m = /^(?:\?[^:]*)?:(\d+):(\d+)/.exec(line.slice(i + configPath.length));
    if (m) return `${file}:${m[1]}:${m[2]}`;
  }
  return undefined;
}
