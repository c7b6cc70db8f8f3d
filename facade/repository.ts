/**
 * The servable repository as the control API sees it (for users coming from Triton or
 * TorchServe): which servables the servable directories hold, with their version folders,
 * against which are loaded. The directories are those the engine started servables from.
 */
import { listServableNames, listVersions, locateServable } from '../engine/servable-dir.js';

export interface RepositoryEntry {
  readonly name: string;
  /** The servable directory holding it ('' when its folder is gone while it is still loaded). */
  readonly directory: string;
  /** Numbered version folders on disk, ascending ([] for a servable without models). */
  readonly available: readonly number[];
  /** Versions loaded now, ascending ([] when not loaded). */
  readonly loaded: readonly number[];
}

/** Every servable under `directories` and every loaded one, by name. */
export async function repositoryIndex(directories: Iterable<string>, loaded: ReadonlyMap<string, readonly number[]>): Promise<RepositoryEntry[]> {
  const entries = new Map<string, RepositoryEntry>();
  for (const directory of new Set(directories)) {
    for (const name of await listServableNames(directory)) {
      if (entries.has(name)) continue; // the first directory that holds it serves it
      const location = await locateServable(directory, name);
      entries.set(name, { name, directory, available: await listVersions(location.dir), loaded: loaded.get(name) ?? [] });
    }
  }
  for (const [name, versions] of loaded) if (!entries.has(name)) entries.set(name, { name, directory: '', available: [], loaded: versions });
  return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The first of `directories` that holds a servable folder named `name`. */
export async function findServable(directories: Iterable<string>, name: string): Promise<string | undefined> {
  for (const directory of new Set(directories)) if ((await listServableNames(directory)).includes(name)) return directory;
  return undefined;
}
