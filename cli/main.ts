/**
 * The `actorserve` command line. `serve` starts servables from a servable directory (by
 * default the bundled examples, generating their models on first start).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ServingServer } from '../engine/server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { listServableNames } from '../engine/servable-dir.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';

const USAGE = `Usage: actorserve <command> [options]

Commands:
  serve     start servables and serve them until SIGINT/SIGTERM

Run "actorserve <command> --help" for the options of a command.
`;

const SERVE_USAGE = `Usage: actorserve serve [options]

Options:
  --servable-dir DIR     folder of servable folders (default: the bundled examples)
  --servables A,B        servables to start (default: every folder with a servable_config.ts)
  --device-ids 0,1       device actors per servable (default: 0)
  --intra-op-threads N   ONNX Runtime threads per device actor (default: 1)
  -h, --help             show this help
`;

class UsageError extends Error {}

function intList(value: string, flag: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`${flag} takes integers >= 0 separated by commas`);
  return list;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'servable-dir': { type: 'string' },
      servables: { type: 'string' },
      'device-ids': { type: 'string' },
      'intra-op-threads': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const bundled = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');
  const dir = path.resolve(values['servable-dir'] ?? bundled);
  if (dir === bundled) {
    await ensureExampleModels(dir, { log: (line) => process.stderr.write(`[actorserve] ${line}\n`) });
  }
  const names = values.servables ? values.servables.split(',').map((s) => s.trim()) : await listServableNames(dir);
  if (names.length === 0) throw new UsageError(`no servables found under ${dir}`);
  const deviceIds = values['device-ids'] ? intList(values['device-ids'], '--device-ids') : [0];
  const intra = values['intra-op-threads'] ? intList(values['intra-op-threads'], '--intra-op-threads')[0] : 1;

  const server = new ServingServer();
  await server.startServables(
    names.map((servableName) => new ServableStartConfig({ servableDirectory: dir, servableName, deviceIds, intraOpThreads: intra })),
  );
  server.log(`serving ${names.join(', ')} from ${dir}; press Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      server.log(`${signal}: stopping`);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.stop();
  return 0;
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const usage = err instanceof UsageError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`actorserve: ${message}\n`);
    if (usage) process.stderr.write(`Run "actorserve ${command ?? ''} --help" for usage.\n`);
    return usage ? 2 : 1;
  }
}
