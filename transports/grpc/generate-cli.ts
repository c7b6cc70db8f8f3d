/**
 * `actorserve generate`: text generation from the command line, printed as it arrives.
 *
 *   actorserve generate <address> <servable> --prompt TEXT [--max-tokens N] [--temperature X]
 *                       [--top-p X] [--top-k N] [--seed N] [--stop TEXT]... [--param NAME=VALUE]...
 *                       [--method M] [--version N] [--timeout-ms N] [--ca FILE] [--cert FILE --key FILE]
 *
 * It calls `Client.generate` (actorserve.v1 InferStream): the prompt is the method's input
 * `text_input`, the flags become request parameters, and each piece of `text_output` is
 * written to stdout as soon as it comes, then a newline. An error goes to stderr as
 * `actorserve generate: CODE: message` (after the text already printed), exit status 1.
 * SIGINT while generating cancels the generation (the server stops it) and exits 130.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import { type TargetAddress, TargetError } from '../target-address.js';
import { type CommandIO, DEFAULT_IO, NOT_GRPC, UsageError, grpcTarget, integer, notGrpc, notGrpcMessage, readCommandLine } from './cli-common.js';
import { Client, type SSLConfig } from './client.js';

export const GENERATE_USAGE = `usage: actorserve generate <address> <servable> --prompt TEXT [options]

Generates text with a servable's streaming method over gRPC (actorserve.v1 InferStream) and
prints it as it arrives.

  <address>            the gRPC server: host:port, grpc://host:port, [::1]:port or
                       unix:/path (default port 5500; not the REST port)
  -p, --prompt TEXT    the prompt (sent as the method's input text_input)
  --max-tokens N       at most N tokens                      (parameter max_tokens)
  --temperature X      sampling temperature; 0 is greedy     (parameter temperature)
  --top-p X            nucleus sampling mass in (0, 1]        (parameter top_p)
  --top-k N            sample among the N likeliest tokens   (parameter top_k)
  --seed N             sampling seed                         (parameter seed)
  --stop TEXT          stop when TEXT is generated; repeat for several (parameter stop,
                       sent as a JSON list)
  --param NAME=VALUE   any other parameter: a JSON number or boolean, else the text
  --method NAME        the method (default: generate)
  --version N          servable version (default 0: the newest)
  --timeout-ms N       deadline of the whole generation
  --ca FILE            TLS: the CA that the server's certificate chains to
  --cert FILE, --key FILE
                       mutual TLS: the client's certificate and key
  -h, --help           this text

Exit status: 0 generated, 1 the generation failed (the error on stderr), 2 usage error,
130 interrupted (SIGINT cancels the generation).`;

interface Parsed {
  address: string;
  target: TargetAddress;
  servable: string;
  prompt: string;
  parameters: Record<string, string | number | boolean | string[]>;
  method: string;
  versionNumber: number;
  timeoutMs: number | undefined;
  ssl: SSLConfig | undefined;
}

const GENERATE_FLAGS = ['prompt', 'max-tokens', 'temperature', 'top-p', 'top-k', 'seed', 'stop', 'param', 'method', 'version', 'timeout-ms', 'ca', 'cert', 'key', 'help'];

/** Runs `actorserve generate ...`; `argv` is what follows `generate`. Resolves with the exit status. */
export async function runGenerateCommand(argv: readonly string[], io: CommandIO = DEFAULT_IO, interrupt: AbortSignal = sigint()): Promise<number> {
  const args = argv[0] === 'generate' ? argv.slice(1) : [...argv];
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(`${GENERATE_USAGE}\n`);
    return 0;
  }
  let parsed: Parsed;
  let client: Client;
  try {
    parsed = parseArgs(args);
    client = new Client(grpcTarget(parsed.target), parsed.servable, parsed.method, {
      versionNumber: parsed.versionNumber,
      ...(parsed.timeoutMs !== undefined ? { timeoutMs: parsed.timeoutMs } : {}),
      ...(parsed.ssl ? { sslConfig: parsed.ssl } : {}),
    });
  } catch (err) {
    if (err instanceof UsageError || err instanceof ServingError || err instanceof TargetError) {
      io.stderr(`actorserve generate: ${err.message}\nRun "actorserve generate --help" for usage.\n`);
      return 2;
    }
    throw err;
  }
  let printed = false;
  const probe = notGrpc(parsed.target, parsed.ssl !== undefined);
  try {
    const pieces = client.generate(parsed.servable, parsed.prompt, parsed.parameters, { method: parsed.method, versionNumber: parsed.versionNumber, signal: interrupt });
    for (;;) {
      // the probe only matters until the server has answered
      const pulled = pieces.next();
      const next = printed ? await pulled : await Promise.race([pulled, probe]);
      if (next === NOT_GRPC) {
        pulled.catch(() => undefined); // cancelled by close() below
        io.stderr(`actorserve generate: E_UNAVAILABLE: ${notGrpcMessage(parsed.address, 'generate')}\n`);
        return 1;
      }
      if (next.done === true) break;
      io.stdout(next.value);
      printed = true;
    }
    io.stdout('\n');
    return 0;
  } catch (err) {
    if (printed) io.stdout('\n');
    if (interrupt.aborted) return 130;
    const e = toServingError(err);
    io.stderr(`actorserve generate: ${e.code}: ${e.message}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** Aborted on SIGINT (the listener is removed once the process would exit anyway). */
function sigint(): AbortSignal {
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('beforeExit', () => process.off('SIGINT', onSignal));
  return ac.signal;
}

function parseArgs(args: readonly string[]): Parsed {
  const parameters: Parsed['parameters'] = {};
  const stops: string[] = [];
  let prompt: string | undefined;
  let method = 'generate';
  const line = readCommandLine(args, 'generate', ['servable'], GENERATE_FLAGS, (arg, value) => {
    switch (arg) {
      case '-p':
      case '--prompt':
        prompt = value();
        return true;
      case '--max-tokens':
        parameters['max_tokens'] = integer(arg, value(), 1);
        return true;
      case '--top-k':
        parameters['top_k'] = integer(arg, value(), 1);
        return true;
      case '--seed':
        parameters['seed'] = integer(arg, value(), 0);
        return true;
      case '--temperature':
        parameters['temperature'] = decimal(arg, value());
        return true;
      case '--top-p':
        parameters['top_p'] = decimal(arg, value());
        return true;
      case '--stop':
        stops.push(value());
        return true;
      case '--param': {
        const [name, v] = parameter(value());
        parameters[name] = v;
        return true;
      }
      case '--method':
        method = value();
        return true;
      default:
        return false;
    }
  });
  if (prompt === undefined) throw new UsageError('give the prompt with --prompt TEXT');
  if (stops.length > 0) parameters['stop'] = stops;
  return { address: line.address, target: line.target, servable: line.rest[0]!, prompt, parameters, method, versionNumber: line.versionNumber, timeoutMs: line.timeoutMs, ssl: line.ssl };
}

function decimal(flag: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0) throw new UsageError(`${flag} must be a number >= 0, got ${JSON.stringify(text)}`);
  return v;
}

/** `NAME=VALUE`: a JSON number or boolean, else the text as it is. */
function parameter(spec: string): [string, string | number | boolean] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UsageError(`--param ${JSON.stringify(spec)} is not NAME=VALUE`);
  const text = spec.slice(eq + 1);
  if (text === 'true' || text === 'false') return [spec.slice(0, eq), text === 'true'];
  const n = Number(text);
  return [spec.slice(0, eq), text.trim() !== '' && Number.isFinite(n) ? n : text];
}
