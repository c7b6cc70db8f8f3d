/**
 * Type-checks servable_config.ts files against this package's own declarations, as an editor
 * with docs/servables.md's tsconfig.json would: `import ... from 'actorserve'` maps to the
 * running copy's .d.ts files wherever the servable folder lives. Used by `actorserve serve
 * --check`; serving itself never type-checks (tsx only strips types).
 */
import path from 'node:path';
import { packageRootOf } from './package-root.js';

/** The compile errors of the configs, one `file:line:col: error TSnnnn: text` line each. */
export type TypeCheckResult = { readonly checked: true; readonly errors: readonly string[] } | { readonly checked: false; readonly reason: string };

export async function typeCheckConfigs(configPaths: readonly string[]): Promise<TypeCheckResult> {
  let ts: typeof import('typescript');
  try {
    ts = (await import('typescript')).default;
  } catch {
    return { checked: false, reason: "the 'typescript' package is not installed beside actorserve" };
  }
  const root = packageRootOf(import.meta.url);
  const options: import('typescript').CompilerOptions = {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    // the configs are ES modules (config-loader.ts loads them so); Bundler resolution reads
    // them without a package.json saying so
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    typeRoots: [path.join(root, 'node_modules', '@types')],
    types: ['node'],
    paths: {
      actorserve: [path.join(root, 'dist', 'index.d.ts')],
      'actorserve/client': [path.join(root, 'dist', 'transports', 'grpc', 'client.d.ts')],
    },
  };
  const program = ts.createProgram([...configPaths], options);
  const ours = new Set(configPaths.map((p) => path.resolve(p)));
  const errors = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.category === ts.DiagnosticCategory.Error && (d.file === undefined || ours.has(path.resolve(d.file.fileName))))
    .map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
      if (d.file === undefined || d.start === undefined) return `error TS${d.code}: ${text}`;
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      return `${d.file.fileName}:${line + 1}:${character + 1}: error TS${d.code}: ${text}`;
    });
  return { checked: true, errors };
}
