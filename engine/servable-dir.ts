/**
 * Servable folders: `<servableDirectory>/<name>/servable_config.ts` plus one folder per
 * numbered version holding the model files. Version 0 means "the newest present".
 */
import { access, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ServingError } from './errors.js';

export const CONFIG_FILE = 'servable_config.ts';

/** What MindSpore Serving (and habit) names the config; actorserve reads only the .ts one. */
const JS_CONFIG_FILE = 'servable_config.js';

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A servable name is one plain folder name: no separators, no `..`, no leading dot. */
export function checkServableName(name: string): void {
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.includes('..')) {
    throw new ServingError('E_INVALID_ARGUMENT', `invalid servable name ${JSON.stringify(name)}: use letters, digits, '_', '-', '.'`);
  }
}

/** Numbered version folders of a servable, ascending. */
export async function listVersions(servableDir: string): Promise<number[]> {
  const entries = await readdir(servableDir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && /^\d+$/.test(e.name) && Number(e.name) > 0 && Number.isSafeInteger(Number(e.name)))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

export interface ServableLocation {
  readonly root: string;
  readonly name: string;
  readonly dir: string;
  readonly configPath: string;
}

/** Checks that the servable folder and its config exist, and returns their paths. */
export async function locateServable(servableDirectory: string, name: string): Promise<ServableLocation> {
  checkServableName(name);
  const root = path.resolve(servableDirectory);
  const dir = path.join(root, name);
  const configPath = path.join(dir, CONFIG_FILE);
  if (!(await isDirectory(dir))) {
    throw new ServingError('E_LOAD_FAILED', `servable '${name}': folder ${dir} does not exist`);
  }
  if (!(await isFile(configPath))) {
    // A servable_config.js is plain JavaScript, which TypeScript accepts as it is: the fix is a rename.
    const js = (await isFile(path.join(dir, JS_CONFIG_FILE)))
      ? ` (found ${JS_CONFIG_FILE}: actorserve loads only ${CONFIG_FILE}, compiled on load; JavaScript is valid TypeScript, so rename it to ${CONFIG_FILE})`
      : '';
    throw new ServingError('E_LOAD_FAILED', `servable '${name}': ${configPath} does not exist${js}`);
  }
  return { root, name, dir, configPath };
}

/**
 * The version to load: `requested` itself (its folder must exist) or, for 0, the newest
 * present. A servable with no models may have no version folder; it then runs as version 1.
 */
export async function resolveVersion(location: ServableLocation, requested: number, hasModels: boolean): Promise<number> {
  const versions = await listVersions(location.dir);
  if (requested === 0) {
    const newest = versions.at(-1);
    if (newest !== undefined) return newest;
    if (!hasModels) return 1;
    throw new ServingError(
      'E_LOAD_FAILED',
      `servable '${location.name}': no numbered version folder under ${location.dir}, but the config declares models (${await versionFolderHint(location.dir)})`,
    );
  }
  if (!versions.includes(requested) && (hasModels || versions.length > 0)) {
    throw new ServingError(
      'E_LOAD_FAILED',
      `servable '${location.name}': version ${requested} does not exist under ${location.dir}` +
        (versions.length ? ` (present: ${versions.join(', ')})` : ''),
    );
  }
  return requested;
}

/**
 * How to make a version folder: rename a look-alike (`v1`, `version_2`: version folders are
 * plain positive numbers, as in MindSpore Serving and TF Serving), or create `1/`.
 */
async function versionFolderHint(servableDir: string): Promise<string> {
  const entries = await readdir(servableDir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const number = /^(?:v|version)[-_]?(\d+)$/i.exec(e.name)?.[1];
    if (e.isDirectory() && number !== undefined && Number(number) > 0) {
      return `version folders are plain numbers: rename ${e.name}${path.sep} to ${Number(number)}${path.sep}`;
    }
  }
  return `put the model files in a version folder: ${path.join(servableDir, '1')}${path.sep}`;
}

/** Absolute path of a model file of a version; refuses names that leave the version folder. */
export function modelFilePath(location: ServableLocation, version: number, file: string): string {
  const versionDir = path.join(location.dir, String(version));
  const full = path.resolve(versionDir, file);
  if (path.relative(versionDir, full).startsWith('..') || path.isAbsolute(path.relative(versionDir, full))) {
    throw new ServingError('E_CONFIG_INVALID', `servable '${location.name}': model file '${file}' lies outside ${versionDir}`);
  }
  return full;
}

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}

/** Names of the servable folders (those holding a servable_config.ts) under a directory. */
export async function listServableNames(servableDirectory: string): Promise<string[]> {
  const entries = await readdir(servableDirectory, { withFileTypes: true }).catch(() => []);
  const names: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() && NAME_RE.test(e.name) && (await isFile(path.join(servableDirectory, e.name, CONFIG_FILE)))) names.push(e.name);
  }
  return names.sort();
}

/** A relative file beside the servable (its folder) when it exists there, else against the current directory. */
export async function resolveBeside(dir: string, file: string): Promise<string> {
  if (path.isAbsolute(file)) return file;
  const beside = path.join(dir, file);
  return access(beside).then(
    () => beside,
    () => path.resolve(file),
  );
}
