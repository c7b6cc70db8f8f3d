/** Finding actorserve's own package folder (protos, the addon, the bundled servables live under it). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Walks up from `start` to the nearest folder holding a package.json; undefined when there is none. */
export function findPackageRoot(start: string): string | undefined {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The package folder of the module at `moduleUrl` (its `import.meta.url`; works from dist/ and from source). */
export function packageRootOf(moduleUrl: string): string {
  const file = fileURLToPath(moduleUrl);
  const root = findPackageRoot(dirname(file));
  if (root === undefined) throw new Error(`actorserve: no package.json above ${file}`);
  return root;
}

let version: string | undefined;

/** The `version` of actorserve's own package.json (read once). */
export function ownPackageVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRootOf(import.meta.url), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}
