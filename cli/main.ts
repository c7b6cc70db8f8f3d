/**
 * The `actorserve` command line: `serve`, `infer`, `generate`, `bench` and `encrypt`, each in its own
 * module, loaded only when its command runs. Every command has --help; bad flags exit 2 with a one-line reason, failures exit 1.
 */
import { UsageError } from './args.js';
import { ConfigError } from './config.js';
import { closest } from '../engine/option-schema.js';
import { cliWording } from './library-wording.js';
import { ownPackageVersion } from '../engine/package-root.js';

const USAGE = `Usage: actorserve <command> [options]

Commands:
  serve     serve servables over REST and gRPC until SIGINT/SIGTERM
  encrypt   encrypt a model file for serving with a key (decKey/decMode)
  infer     call a method over gRPC and print the outputs as JSON
  generate  generate text over gRPC, printed as it arrives (streaming methods)
  bench     load-test a REST or gRPC server (actorserve or MindSpore-compatible)
  agent     run this host's ranks of a distributed servable (docs/distributed.md)

Options:
  -h, --help     this text
  -v, --version  print the actorserve version

Run "actorserve <command> --help" for the options of a command.
`;

const COMMANDS = ['serve', 'encrypt', 'infer', 'generate', 'bench', 'agent'];

/** `unknown command 'serv' (did you mean 'serve'?)`. */
function unknownCommand(command: string): UsageError {
  const guess = closest(command, COMMANDS);
  return new UsageError(`unknown command '${command}'${guess ? ` (did you mean '${guess}'?)` : ''}`);
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await (await import('./serve.js')).serve(rest);
      case 'encrypt':
        return await (await import('./encrypt.js')).encryptCommand(rest);
      case 'infer':
        return await (await import('../transports/grpc/infer-cli.js')).runInferCommand(rest);
      case 'generate':
        return await (await import('../transports/grpc/generate-cli.js')).runGenerateCommand(rest);
      case 'bench':
        return await (await import('./bench.js')).runBenchCommand(rest);
      case 'agent':
        return await (await import('./agent.js')).agentCommand(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 1 : 0;
      case '-v':
      case '--version':
      case 'version':
        process.stdout.write(`actorserve ${ownPackageVersion()}\n`);
        return 0;
      default:
        throw unknownCommand(command);
    }
  } catch (err) {
    const message = cliWording(err instanceof Error ? err.message : String(err));
    const usage = err instanceof UsageError || err instanceof ConfigError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`actorserve: ${message.split('\n')[0]}\n`);
    // the help of the command that failed; for a command that does not exist, the list of commands
    const help = command !== undefined && COMMANDS.includes(command) ? `actorserve ${command} --help` : 'actorserve --help';
    if (usage) process.stderr.write(`Run "${help}" for usage.\n`);
    return usage ? 2 : 1;
  }
}
