/**
 * Module resolve hooks (registered by config-loader.ts with node:module `register`) that let a
 * servable folder live anywhere:
 * - a servable config's `import ... from 'actorserve'` (or 'actorserve/client') resolves to the
 *   copy of the package that is serving it. Outside this package's folder Node would look for
 *   a node_modules/actorserve above the config and fail; and a second copy found there would
 *   keep its own register state, so the server would see no declarations. Resolving the
 *   specifier as if imported from inside this package makes Node apply this package's own
 *   `exports` (a package may import itself by name).
 * - a fresh load: config-loader.ts imports a config with `?actorserve-load=N` in its URL, and
 *   the user's modules it imports (relative or absolute paths, outside node_modules and outside
 *   this package) carry the same parameter, so each load evaluates the config's own files anew
 *   while packages stay the instances already loaded.
 * - `.ts` files outside node_modules load as ES modules. Without a package.json saying
 *   `"type": "module"` above them tsx would compile them to CommonJS, whose `require` these
 *   hooks do not see (Node 20 runs module hooks for `import` only). `.cts` stays CommonJS.
 */
import type { InitializeHook, ResolveHook } from 'node:module';

/** The data `register` passes: a URL of a module inside this package. */
export interface OwnPackageHookData {
  readonly insidePackageURL: string;
}

export const PACKAGE_NAME = 'actorserve';

/** The URL search parameter that names one load of a config (config-loader.ts). */
export const LOAD_PARAM = 'actorserve-load';

let insidePackageURL: string | undefined;

/** The folder of this package's compiled modules (dist/, with a trailing slash): never loaded afresh. */
let packageModules: string | undefined;

export const initialize: InitializeHook<OwnPackageHookData> = (data) => {
  insidePackageURL = data.insidePackageURL;
  packageModules = new URL('../', data.insidePackageURL).pathname;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const own = specifier === PACKAGE_NAME || specifier.startsWith(`${PACKAGE_NAME}/`);
  if (own && insidePackageURL !== undefined) return nextResolve(specifier, { ...context, parentURL: insidePackageURL });
  const resolved = await nextResolve(specifier, context);
  const load = loadOf(context.parentURL);
  const url = load !== undefined && isUserFile(resolved.url) ? withLoad(resolved.url, load) : resolved.url;
  if (resolved.format !== 'module' && isOwnTypeScript(url)) return { ...resolved, url, format: 'module' };
  return url === resolved.url ? resolved : { ...resolved, url };
};

/** The load a module belongs to (its URL's LOAD_PARAM), if any. */
function loadOf(parentURL: string | undefined): string | undefined {
  if (parentURL === undefined || !parentURL.startsWith('file:') || !parentURL.includes(LOAD_PARAM)) return undefined;
  return new URL(parentURL).searchParams.get(LOAD_PARAM) ?? undefined;
}

/** A file of the user's: not a dependency's, not one of this package's modules. */
function isUserFile(url: string): boolean {
  if (!url.startsWith('file:')) return false;
  const pathname = new URL(url).pathname;
  return !pathname.includes('/node_modules/') && (packageModules === undefined || !pathname.startsWith(packageModules));
}

function withLoad(url: string, load: string): string {
  const u = new URL(url);
  u.searchParams.set(LOAD_PARAM, load);
  return u.href;
}

/** A `.ts`/`.mts` file of the user's (not a dependency's), query and hash aside. */
function isOwnTypeScript(url: string): boolean {
  if (!url.startsWith('file:')) return false;
  const pathname = new URL(url).pathname;
  return /\.m?ts$/.test(pathname) && !pathname.includes('/node_modules/');
}
