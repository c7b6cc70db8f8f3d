/**
 * Module resolve hooks (registered by config-loader.ts with node:module `register`) that let a
 * servable folder live anywhere:
 * - a servable config's `import ... from 'actorserve'` (or 'actorserve/client') resolves to the
 *   copy of the package that is serving it. Outside this package's folder Node would look for
 *   a node_modules/actorserve above the config and fail; and a second copy found there would
 *   keep its own register state, so the server would see no declarations. Resolving the
 *   specifier as if imported from inside this package makes Node apply this package's own
 *   `exports` (a package may import itself by name).
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

let insidePackageURL: string | undefined;

export const initialize: InitializeHook<OwnPackageHookData> = (data) => {
  insidePackageURL = data.insidePackageURL;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const own = specifier === PACKAGE_NAME || specifier.startsWith(`${PACKAGE_NAME}/`);
  if (own && insidePackageURL !== undefined) return nextResolve(specifier, { ...context, parentURL: insidePackageURL });
  const resolved = await nextResolve(specifier, context);
  if (resolved.format !== 'module' && isOwnTypeScript(resolved.url)) return { ...resolved, format: 'module' };
  return resolved;
};

/** A `.ts`/`.mts` file of the user's (not a dependency's), query and hash aside. */
function isOwnTypeScript(url: string): boolean {
  if (!url.startsWith('file:')) return false;
  const pathname = new URL(url).pathname;
  return /\.m?ts$/.test(pathname) && !pathname.includes('/node_modules/');
}
