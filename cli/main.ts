/**
 * The `actorserve` command line: `serve`, `infer`, `bench` and `encrypt`, each in its own
 * module. Every command has --help; bad flags exit 2 with a one-line reason, failures exit 1.
 */
import { UsageError } from './args.js';
import { ConfigError } from './config.js';
import { serve } from './serve.js';
import { encryptCommand } from './encrypt.js';
import { runBenchCommand } from './bench.js';
import { runInferCommand } from '../transports/grpc/infer-cli.js';

const USAGE = `Usage: actorserve <command> [options]

Commands:
  serve     serve servables over REST and gRPC until SIGINT/SIGTERM
  encrypt   encrypt a model file for serving with a key (decKey/decMode)
  infer     call a method over gRPC and print the outputs as JSON
  bench     load-test a REST or gRPC server (actorserve or MindSpore-compatible)

Run "actorserve <command> --help" for the options of a command.
`;

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'encrypt':
        return await encryptCommand(rest);
      case 'infer':
        return await runInferCommand(rest);
      case 'bench':
        return await runBenchCommand(rest);
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
    const usage = err instanceof UsageError || err instanceof ConfigError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`actorserve: ${message.split('\n')[0]}\n`);
    if (usage) process.stderr.write(`Run "actorserve ${command ?? ''} --help" for usage.\n`);
    return usage ? 2 : 1;
  }
}
