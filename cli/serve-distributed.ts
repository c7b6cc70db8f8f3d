/**
 * Distributed servables in `actorserve serve`: which servables to serve are declared distributed,
 * and for each, `distributed.startServable`'s options from the --distributed-address,
 * --rank-table and --wait-agents-s flags written over its config entry's keys of the same names
 * (docs/distributed.md). One without a coordinator address is left out (its ranks need agents).
 * Every check throws a UsageError (exit 2) before anything is started.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DistributedStartOptions } from '../engine/distributed.js';
import { loadServableConfig } from '../engine/config-loader.js';
import { locateServable, resolveBeside } from '../engine/servable-dir.js';
import { UsageError } from './args.js';
import { DISTRIBUTED_ENTRY_KEYS } from './config.js';

/** The distributed keys of one servable entry (and of the flags, which apply to every distributed servable served). */
export interface DistributedKeys {
  readonly distributedAddress?: string | undefined;
  readonly rankTableJsonFile?: string | undefined;
  readonly waitAgentsTimeInSeconds?: number | undefined;
}

/** A servable entry as `serve` has it, with the keys a distributed start takes too. */
export interface EntryToSplit extends DistributedKeys {
  readonly name: string;
  readonly version: number;
  readonly maxQueuedRequests: number;
  readonly defaultDeadlineMs: number;
  readonly numParallelWorkers: number;
}

export interface DistributedStart {
  readonly name: string;
  readonly options: DistributedStartOptions;
}

/** Each key's flag, for messages. */
const FLAG_OF: Record<(typeof DISTRIBUTED_ENTRY_KEYS)[number], string> = {
  distributedAddress: '--distributed-address',
  rankTableJsonFile: '--rank-table',
  waitAgentsTimeInSeconds: '--wait-agents-s',
};

const keyText = (key: (typeof DISTRIBUTED_ENTRY_KEYS)[number]): string => `${FLAG_OF[key]} / ${key}`;
const givenKeys = (keys: DistributedKeys) => DISTRIBUTED_ENTRY_KEYS.filter((k) => keys[k] !== undefined);

/** Rank tables found beside a servable_config.ts when none is named: `rank_table*.json`. */
const RANK_TABLE_FILE = /^rank_table.*\.json$/;

/**
 * The servables among `names` whose config declares them distributed. A config that does not
 * load is not counted, so that starting it reports why.
 */
export async function distributedServables(dir: string, names: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of names) {
    const loaded = await locateServable(dir, name)
      .then((l) => loadServableConfig(l.configPath, name))
      .catch(() => undefined);
    if (loaded?.models.some((m) => m.declaration.distributed)) found.push(name);
  }
  return found;
}

/**
 * Splits `entries` into the local ones, the distributed ones to start as coordinators, and the
 * distributed ones left out (no address; `log` says so, naming the flag).
 */
export async function splitDistributed<E extends EntryToSplit>(
  dir: string,
  entries: readonly E[],
  flags: DistributedKeys,
  log: (line: string) => void,
): Promise<{ local: E[]; distributed: DistributedStart[] }> {
  const declared = await distributedServables(dir, entries.map((e) => e.name));
  const local = entries.filter((e) => !declared.includes(e.name));
  for (const e of local) {
    const [key] = givenKeys(e);
    if (key) throw new UsageError(`servable '${e.name}' is not distributed (its servable_config.ts does not call distributed.declareServable): ${key} applies to distributed servables only`);
  }
  const [flag] = givenKeys(flags);
  if (flag && declared.length === 0) {
    throw new UsageError(`${FLAG_OF[flag]}: none of the servables to serve (${entries.map((e) => e.name).join(', ')}) is distributed (declared with distributed.declareServable)`);
  }
  if (flag && declared.length > 1 && (flags.distributedAddress !== undefined || flags.rankTableJsonFile !== undefined)) {
    throw new UsageError(
      `${FLAG_OF[flags.distributedAddress !== undefined ? 'distributedAddress' : 'rankTableJsonFile']} applies to one distributed servable, and ${declared.length} are to be served (${declared.join(', ')}): name one with --servables, or give each its own distributedAddress and rankTableJsonFile in the config file`,
    );
  }
  const distributed: DistributedStart[] = [];
  for (const e of entries.filter((x) => declared.includes(x.name))) {
    const keys: DistributedKeys = { ...pick(e), ...pick(flags) };
    if (keys.distributedAddress === undefined) {
      const [extra] = givenKeys(keys);
      if (extra) throw new UsageError(`servable '${e.name}': ${keyText(extra)} needs a coordinator address (${keyText('distributedAddress')})`);
      log(`servable '${e.name}' is distributed: not started here; its ranks run on agents: give --distributed-address (distributedAddress) to start it as their coordinator (see docs/distributed.md)`);
      continue;
    }
    const servableDir = (await locateServable(dir, e.name)).dir;
    const rankTableJsonFile = keys.rankTableJsonFile !== undefined ? await givenRankTable(servableDir, e.name, keys.rankTableJsonFile) : await foundRankTable(servableDir, e.name);
    distributed.push({
      name: e.name,
      options: {
        rankTableJsonFile,
        distributedAddress: keys.distributedAddress,
        versionNumber: e.version,
        maxQueuedRequests: e.maxQueuedRequests,
        defaultDeadlineMs: e.defaultDeadlineMs,
        numParallelWorkers: e.numParallelWorkers,
        ...(keys.waitAgentsTimeInSeconds !== undefined ? { waitAgentsTimeInSeconds: keys.waitAgentsTimeInSeconds } : {}),
      },
    });
  }
  return { local, distributed };
}

function pick(keys: DistributedKeys): DistributedKeys {
  return Object.fromEntries(givenKeys(keys).map((k) => [k, keys[k]]));
}

/** The named rank table, as distributed.startServable finds it (the servable's folder, else the current directory). */
async function givenRankTable(servableDir: string, name: string, file: string): Promise<string> {
  const resolved = await resolveBeside(servableDir, file);
  const st = await stat(resolved).catch(() => undefined);
  if (!st?.isFile()) {
    const where = resolved === file ? '' : ` (looked in ${servableDir} and the current directory)`;
    throw new UsageError(`servable '${name}': the rank table ${file} (${keyText('rankTableJsonFile')}) does not exist${where}`);
  }
  return resolved;
}

/** The one rank_table*.json beside the servable's servable_config.ts. */
async function foundRankTable(servableDir: string, name: string): Promise<string> {
  const found = (await readdir(servableDir)).filter((f) => RANK_TABLE_FILE.test(f)).sort();
  if (found.length === 1) return path.join(servableDir, found[0]!);
  const what = found.length === 0 ? 'holds no rank_table*.json' : `holds several rank tables (${found.join(', ')})`;
  throw new UsageError(`servable '${name}': its folder ${servableDir} ${what}: name one with ${keyText('rankTableJsonFile')}`);
}
