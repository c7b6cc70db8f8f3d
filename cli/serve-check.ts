/**
 * `actorserve serve --check`: loads every servable as `serve` would (its config traced, its
 * models loaded on device actors, its stage functions imported by the stage workers),
 * type-checks each servable_config.ts against this package, prints what would be served and
 * stops; no port is bound. Every problem is listed, not only the first.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ServingServer } from '../server.js';
import { typeCheckConfigs } from '../engine/config-typecheck.js';
import { CONFIG_FILE } from '../engine/servable-dir.js';
import type { ServableStartConfig } from '../engine/start-config.js';

export interface CheckEntry {
  readonly name: string;
  /** Its start config (reads the key file, so it may fail too). */
  readonly config: () => Promise<ServableStartConfig>;
}

/** Resolves with the exit code: 0 when everything loads and type-checks, 1 otherwise. */
export async function checkServables(server: ServingServer, entries: readonly CheckEntry[], servableDirectory: string): Promise<number> {
  const problems: string[] = [];
  try {
    for (const entry of entries) {
      try {
        await server.startServables(await entry.config());
      } catch (err) {
        problems.push(err instanceof Error ? err.message.split('\n')[0]! : String(err));
      }
    }
    const configs = entries.map((e) => path.join(servableDirectory, e.name, CONFIG_FILE)).filter((p) => existsSync(p));
    const typed = await typeCheckConfigs(configs);
    if (typed.checked) problems.push(...typed.errors.map((e) => `type error: ${e}`));
    const out: string[] = [];
    for (const s of server.describe()) {
      out.push(`servable '${s.name}' version ${s.versions.join(', ')}`);
      for (const m of s.methods) out.push(`  ${m.name}(${m.inputs.map((i) => i.name).join(', ')}) -> ${m.outputs.join(', ')}`);
    }
    if (!typed.checked) out.push(`type-check skipped: ${typed.reason}`);
    process.stdout.write(out.map((l) => `${l}\n`).join(''));
    if (problems.length > 0) {
      process.stderr.write(`actorserve: --check found ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}\n`).join('')}`);
      return 1;
    }
    process.stdout.write(`check passed: ${entries.length} servable${entries.length === 1 ? '' : 's'} loaded${typed.checked ? ' and type-checked' : ''}; nothing was served\n`);
    return 0;
  } finally {
    await server.stop();
  }
}
