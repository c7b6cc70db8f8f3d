/**
 * `actorserve bench <target> --servable S --method M [...]`: a bounded closed-loop load
 * generator for any server speaking actorserve's REST protocol (MindSpore's RESTful API) or
 * gRPC (`MSService/Predict`, actorserve's `PredictStream`, the Open Inference Protocol's
 * `ModelInfer`). Load runs on worker threads that
 * own keep-alive connections and send pre-encoded bodies; the main thread only keeps time,
 * prints progress on stderr (cli/bench-progress.ts) and the final table (or `--json`).
 *
 * Exit codes: 0 the run completed; 1 the target is unreachable, refuses the request, or no
 * request of a level succeeded; 2 bad flags or input.
 */
import { readFile } from 'node:fs/promises';

import { UsageError, parseArgsStrict } from './args.js';
import { type Protocol, InputError, PROTOCOLS, buildPayload, defaultInput } from './bench-input.js';
import { BenchError, type Generator, type LevelResult, type Plan, TargetError, defaultWorkers, parseTarget, preflight, runLevel } from './bench-load.js';
import { progressLine } from './bench-progress.js';
import { runWrkLevel } from './bench-wrk-level.js';
import { WrkError } from './bench-wrk.js';
import { findExecutable } from './find-executable.js';
import { isDType } from '../engine/dtypes.js';

export const BENCH_USAGE = `Usage: actorserve bench <target> --servable NAME --method NAME [options]

Load-tests a server speaking actorserve's REST or gRPC protocols (actorserve, MindSpore
Serving, or any KServe v2 / Open Inference Protocol gRPC server): closed-loop clients, one
concurrency level after another, then a table of requests/s, instances/s, latency
percentiles, errors by kind and the load generator's CPU per request for each level. REST
load comes from wrk when it is installed (a C load generator: a few µs of CPU per request, so
on a small machine the server sets the limit), otherwise, and for gRPC, from closed loops on
worker threads in this process.

<target>                  host:port, http://host:port or unix:/path/to/socket
                          (default port: 1500 for rest, 5500 for grpc)
Options:
  --servable NAME         servable to call (required)
  --method NAME           method to call (required)
  --version N             servable version (default: 0, the newest)
  --protocol P            rest (default), grpc (MSService/Predict, unary), grpc-stream
                          (actorserve PredictStream: one stream per load thread, every
                          request of the level in flight on it) or kserve (KServe v2 gRPC:
                          GRPCInferenceService/ModelInfer, unary, model <servable>.<method>;
                          the input's instances are stacked along a leading batch dim and
                          sent in raw_input_contents)
  --concurrency LIST      requests in flight per level, e.g. 1,8,64 (default: 1,8,64)
  --duration D            measure each level for D: 10s, 500ms, 1m; the unit is required
                          (default: 10s)
  --requests N            instead of --duration: exactly N requests per level
  --warmup D              unmeasured load before each level, 0 for none (default: 1s with
                          --duration, 0 with --requests)
  --input FILE            JSON body {"instances": ...} sent with every request (default for
                          add/add_common and add/add_cast: the README's example)
  --msgpack               rest: send the input as msgpack and ask for msgpack replies
  --dtype T               gRPC protocols: dtype of plain JSON numbers in the input
                          (default: float32; {"b64", "type", "shape"} values keep their own)
  --generator G           wrk or js. wrk (the default for rest over TCP with --duration
                          when wrk is on PATH; Debian/Ubuntu: apt-get install wrk): one wrk
                          process per level, -t = --workers (a divisor of the concurrency),
                          -c = the concurrency. js (the default otherwise): closed loops on
                          worker threads in this process; the only one for grpc,
                          grpc-stream, kserve, unix: targets, --requests and --http-client
  --http-client C         rest, js generator: raw (default: keep-alive HTTP/1.1 on node:net,
                          the lighter client) or node (node:http's keep-alive Agent, as a
                          cross-check)
  --workers N             load-generator threads (default: half the cores, 1..8; never
                          more than the concurrency)
  --server-pid PID        the server's process id when it runs on this machine: its CPU
                          per request is shown next to the load generator's (Linux)
  --timeout D             per-request timeout (default: 30s; wrk takes whole seconds, so
                          it is rounded up)
  --json                  print the results as JSON on stdout instead of the table, and no
                          progress lines in logs (a terminal still shows the live line)
  -h, --help              show this help

A request counts as failed when the reply is not 200 (rest), the gRPC status is not OK, or
the reply holds an error_msg (the whole request or one instance; grpc and grpc-stream). With wrk, a failure is a
reply with a status >= 400 or a socket error (connect, read, write, timeout), counted by
kind; wrk does not read reply bodies, so a 200 carrying an error_msg is not counted (one
request before the run must succeed, and one after a level with errors shows a sample).
Latency percentiles are of successful requests (wrk: of every reply); req/s counts
successful requests. "gen CPU µs/req" is the CPU time the load generator used (wrk's
process, or this one for js) divided by the requests answered. When every request fails to
connect for 1 s (the server went away), the level stops there: "server unreachable from
t=…" on stderr, its rates cover the time before (unreachableFromSeconds in --json), later
levels are not run, and the exit code is 1.
`;

export interface BenchIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * `10s`, `500ms`, `1.5m` → milliseconds. The unit is required: a bare `5` reads as seconds to
 * some and as milliseconds to others (this tool's own option keys are in ms), so it is refused
 * with a message that names the units. `allowZero` accepts `0`, `0s`, `0ms` (no warm-up).
 */
export function parseDuration(value: string, flag: string, { allowZero = false } = {}): number {
  const text = value.trim();
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (m && m[2] === undefined && Number(m[1]) !== 0) {
    throw new UsageError(`${flag} needs a unit: ${text}s, ${text}ms or ${text}m, got '${value}'`);
  }
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000) : NaN;
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) {
    throw new UsageError(`${flag} takes a duration${allowZero ? ' (0 for none)' : ''} such as 10s, 500ms or 1m, got '${value}'`);
  }
  return ms;
}

function positiveInt(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || !/^\d+$/.test(value.trim())) throw new UsageError(`${flag} takes an integer >= ${min}, got '${value}'`);
  return n;
}

function concurrencyList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 100_000)) {
    throw new UsageError(`--concurrency takes integers from 1 to 100000 separated by commas, got '${value}'`);
  }
  return parts.map(Number);
}

export interface BenchOptions {
  readonly target: string;
  readonly protocol: Protocol;
  readonly servable: string;
  readonly method: string;
  readonly version: number;
  readonly concurrency: number[];
  readonly durationMs?: number;
  readonly requests?: number;
  readonly warmupMs: number;
  readonly input?: string;
  readonly msgpack: boolean;
  readonly dtype: string;
  readonly workers: number;
  /** Given with --http-client (the raw client otherwise). */
  readonly httpClient?: 'raw' | 'node';
  /** Given with --generator (chosen by chooseGenerator otherwise). */
  readonly generator?: Generator;
  readonly serverPid?: number;
  readonly timeoutMs: number;
  readonly json: boolean;
}

/** Parses the command line; undefined for --help. Throws UsageError. */
export function parseBenchArgs(argv: string[]): BenchOptions | undefined {
  const { values, positionals } = parseArgsStrict({
    args: argv,
    options: {
      servable: { type: 'string' },
      method: { type: 'string' },
      version: { type: 'string' },
      protocol: { type: 'string' },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      requests: { type: 'string' },
      warmup: { type: 'string' },
      input: { type: 'string' },
      msgpack: { type: 'boolean' },
      dtype: { type: 'string' },
      workers: { type: 'string' },
      'http-client': { type: 'string' },
      generator: { type: 'string' },
      'server-pid': { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return undefined;
  if (positionals.length === 0) throw new UsageError('bench needs a target (host:port, http://host:port or unix:/path)');
  if (positionals.length > 1) throw new UsageError(`bench takes one target, got ${positionals.length}: ${positionals.join(' ')}`);
  if (!values.servable) throw new UsageError('--servable is required');
  if (!values.method) throw new UsageError('--method is required');
  const protocol = (values.protocol ?? 'rest') as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new UsageError(`--protocol takes ${PROTOCOLS.join(', ')}, got '${values.protocol}'`);
  if (values.duration !== undefined && values.requests !== undefined) throw new UsageError('give --duration or --requests, not both');
  if (values.msgpack && protocol !== 'rest') throw new UsageError('--msgpack is for --protocol rest');
  if (values.dtype !== undefined && protocol === 'rest') throw new UsageError('--dtype is for the grpc protocols (REST servers convert numbers to the model dtype)');
  const httpClient = values['http-client'];
  if (httpClient !== undefined && httpClient !== 'raw' && httpClient !== 'node') throw new UsageError(`--http-client takes raw or node, got '${httpClient}'`);
  if (httpClient !== undefined && protocol !== 'rest') throw new UsageError('--http-client is for --protocol rest');
  const generator = values.generator;
  if (generator !== undefined && generator !== 'wrk' && generator !== 'js') throw new UsageError(`--generator takes wrk or js, got '${generator}'`);
  if (generator === 'wrk') {
    if (protocol !== 'rest') throw new UsageError('--generator wrk is for --protocol rest (gRPC load comes from the js generator)');
    if (values.requests !== undefined) throw new UsageError('--generator wrk runs for a --duration; --requests needs --generator js');
    if (httpClient !== undefined) throw new UsageError('--http-client is for --generator js');
  }
  const dtype = values.dtype ?? 'float32';
  if (!isDType(dtype) || dtype === 'string' || dtype === 'bytes' || dtype === 'bool') throw new UsageError(`--dtype takes a numeric dtype (float32, int64, ...), got '${dtype}'`);
  const requests = values.requests !== undefined ? positiveInt(values.requests, '--requests') : undefined;
  const durationMs = requests === undefined ? parseDuration(values.duration ?? '10s', '--duration') : undefined;
  const warmupMs = values.warmup !== undefined ? parseDuration(values.warmup, '--warmup', { allowZero: true }) : requests === undefined ? 1000 : 0;
  return {
    target: positionals[0]!,
    protocol,
    servable: values.servable,
    method: values.method,
    version: values.version !== undefined ? positiveInt(values.version, '--version', 0) : 0,
    concurrency: concurrencyList(values.concurrency ?? '1,8,64'),
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(requests !== undefined ? { requests } : {}),
    warmupMs,
    ...(values.input !== undefined ? { input: values.input } : {}),
    msgpack: values.msgpack ?? false,
    dtype,
    workers: values.workers !== undefined ? positiveInt(values.workers, '--workers') : defaultWorkers(),
    ...(httpClient !== undefined ? { httpClient } : {}),
    ...(generator !== undefined ? { generator } : {}),
    ...(values['server-pid'] !== undefined ? { serverPid: positiveInt(values['server-pid'], '--server-pid') } : {}),
    timeoutMs: values.timeout !== undefined ? parseDuration(values.timeout, '--timeout') : 30_000,
    json: values.json ?? false,
  };
}

/** Builds the plan (target, payload) from parsed options. Throws UsageError for bad input. */
export async function makePlan(o: BenchOptions): Promise<Plan> {
  let json: Uint8Array;
  let where: string;
  if (o.input !== undefined) {
    try {
      json = await readFile(o.input);
    } catch (err) {
      throw new UsageError(`cannot read --input ${o.input}: ${(err as Error).message}`);
    }
    where = `--input ${o.input}`;
  } else {
    const builtIn = defaultInput(o.servable, o.method);
    if (builtIn === undefined) throw new UsageError(`--input is required for ${o.servable}/${o.method} (a JSON file {"instances": ...}); only add/add_common and add/add_cast have a built-in input`);
    json = Buffer.from(builtIn);
    where = 'the built-in input';
  }
  let target;
  let payload;
  try {
    target = parseTarget(o.target, o.protocol);
    payload = buildPayload(o.protocol, json, { servable: o.servable, method: o.method, version: o.version }, { msgpack: o.msgpack, numbersDtype: o.dtype as never, where });
  } catch (err) {
    if (err instanceof TargetError || err instanceof InputError) throw new UsageError(err.message);
    throw err;
  }
  return { protocol: o.protocol, ...target, payload, timeoutMs: o.timeoutMs, workers: o.workers, httpClient: o.httpClient ?? 'raw' };
}

/** The load generator for a run: wrk's path, or js with the reason when wrk was wanted but is missing. */
export interface GeneratorChoice {
  readonly generator: Generator;
  readonly wrk?: string;
  /** Why the default is not wrk although the run could use it (wrk not installed). */
  readonly note?: string;
}

const INSTALL_WRK = 'Debian/Ubuntu: apt-get install wrk';

/**
 * --generator, or the default: wrk for REST over TCP in duration mode with the raw client when
 * wrk is on `searchPath`, js otherwise. Throws UsageError for a unix: target with wrk, BenchError
 * when --generator wrk is given and wrk is not installed.
 */
export function chooseGenerator(o: BenchOptions, plan: Plan, searchPath?: string): GeneratorChoice {
  const unix = plan.rest?.socketPath !== undefined;
  if (o.generator === 'js') return { generator: 'js' };
  if (o.generator === 'wrk') {
    if (unix) throw new UsageError('--generator wrk connects over TCP only; a unix: target needs --generator js');
    const wrk = findExecutable('wrk', searchPath);
    if (!wrk) throw new BenchError(`--generator wrk: wrk is not on PATH (${INSTALL_WRK}), or use --generator js`);
    return { generator: 'wrk', wrk };
  }
  if (o.protocol !== 'rest' || unix || o.requests !== undefined || o.httpClient !== undefined) return { generator: 'js' };
  const wrk = findExecutable('wrk', searchPath);
  if (wrk) return { generator: 'wrk', wrk };
  return { generator: 'js', note: `wrk is not on PATH, so the load comes from the js generator, which costs several times more CPU per request (${INSTALL_WRK})` };
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** The final table: one row per level, then one line per error kind. */
export function formatTable(results: readonly LevelResult[]): string {
  const server = results.some((r) => r.serverCpuPerRequestUs !== undefined);
  const headers = ['concurrency', 'requests', 'req/s', 'inst/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'gen CPU µs/req', ...(server ? ['server CPU µs/req'] : [])];
  const rows = results.map((r) => [
    String(r.concurrency),
    String(r.requests),
    fmt(r.requestsPerSecond),
    fmt(r.instancesPerSecond),
    fmt(r.latencyMs.p50),
    fmt(r.latencyMs.p90),
    fmt(r.latencyMs.p99),
    fmt(r.latencyMs.max),
    String(r.errors),
    fmt(r.generatorCpuPerRequestUs ?? NaN),
    ...(server ? [fmt(r.serverCpuPerRequestUs ?? NaN)] : []),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(headers), ...rows.map(line)];
  for (const r of results) {
    for (const [kind, n] of Object.entries(r.errorsByKind)) {
      const sample = r.errorSamples[kind];
      out.push(`c=${r.concurrency}: ${n} × ${kind}${sample ? ` (e.g. ${sample.length > 160 ? `${sample.slice(0, 160)}…` : sample})` : ''}`);
    }
  }
  return out.join('\n') + '\n';
}

/** Runs the command; resolves with the exit code. Usage errors throw UsageError (main prints them, exit 2). */
export async function runBench(argv: string[], io: BenchIO): Promise<number> {
  const o = parseBenchArgs(argv);
  if (!o) {
    io.stdout.write(BENCH_USAGE);
    return 0;
  }
  const plan = await makePlan(o);
  const choice = chooseGenerator(o, plan);
  if (choice.note) io.stderr.write(`actorserve bench: ${choice.note}\n`);
  await preflight(plan);
  const tty = io.stderr.isTTY === true;
  const mode = o.requests !== undefined ? `${o.requests} requests` : `${o.durationMs! / 1000} s`;
  if (!o.json) {
    io.stdout.write(
      `${plan.label} ${o.protocol} ${o.servable}/${o.method}${o.version ? ` v${o.version}` : ''}: ${plan.payload.instances} instance(s) per request, ` +
        `${mode} per level${o.warmupMs ? ` after ${o.warmupMs / 1000} s warm-up` : ''}, ` +
        `${choice.wrk ? `wrk (${choice.wrk}) with` : 'js generator,'} up to ${o.workers} load thread(s)\n`,
    );
  }
  const results: LevelResult[] = [];
  for (const concurrency of o.concurrency) {
    const progress = o.json && !tty ? undefined : progressLine(io.stderr, tty, concurrency);
    const level = {
      concurrency,
      ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
      ...(o.requests !== undefined ? { requests: o.requests } : {}),
      warmupMs: o.warmupMs,
      ...(progress ? { onProgress: progress.onProgress } : {}),
      ...(o.serverPid !== undefined ? { serverPid: o.serverPid } : {}),
    };
    const r = choice.wrk ? await runWrkLevel(plan, choice.wrk, level) : await runLevel(plan, level);
    progress?.done();
    results.push(r);
    if (r.unreachableFromSeconds !== undefined) break; // the levels after it would measure nothing
  }
  if (o.json) {
    const doc = {
      target: plan.label,
      protocol: o.protocol,
      servable: o.servable,
      method: o.method,
      version: o.version,
      instancesPerRequest: plan.payload.instances,
      ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : { requestsPerLevel: o.requests }),
      warmupMs: o.warmupMs,
      workers: o.workers,
      generator: choice.generator,
      levels: results,
    };
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    io.stdout.write(formatTable(results));
  }
  const lost = results.find((r) => r.unreachableFromSeconds !== undefined);
  if (lost) {
    const skipped = o.concurrency.length - results.length;
    io.stderr.write(
      `actorserve bench: server unreachable from t=${lost.unreachableFromSeconds!.toFixed(2)} s at concurrency ${lost.concurrency}; ` +
        `the level stopped there (its rates cover the ${lost.seconds.toFixed(2)} s before)${skipped > 0 ? `, ${skipped} later level(s) not run` : ''}\n`,
    );
    return 1;
  }
  const dead = results.find((r) => r.ok === 0);
  if (dead) {
    const kind = Object.keys(dead.errorsByKind)[0];
    io.stderr.write(`actorserve bench: no request succeeded at concurrency ${dead.concurrency}${kind ? ` (${kind}: ${dead.errorSamples[kind] ?? ''})` : ''}\n`);
    return 1;
  }
  return 0;
}

/**
 * `actorserve bench ...`: what cli/main.ts calls. Prints usage errors (exit 2) and failures
 * (exit 1) as one line on stderr, so it also works on its own.
 */
export async function runBenchCommand(argv: string[], io: BenchIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    return await runBench(argv, io);
  } catch (err) {
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    const usage = err instanceof UsageError || String((err as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`actorserve bench: ${message}\n`);
    if (usage) io.stderr.write('Run "actorserve bench --help" for usage.\n');
    if (!usage && !(err instanceof BenchError) && !(err instanceof WrkError) && process.env['NODE_DEBUG']?.includes('actorserve-bench')) io.stderr.write(`${(err as Error).stack}\n`);
    return usage ? 2 : 1;
  }
}
