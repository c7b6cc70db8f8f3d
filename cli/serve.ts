/**
 * `actorserve serve`: starts servables and the transports from flags and/or a config file,
 * serves until SIGINT/SIGTERM, then drains (in-flight work finishes, up to the drain timeout)
 * and exits 0. A second signal exits at once.
 */
import path from 'node:path';
import type { ServingServer } from '../server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { listServableNames } from '../engine/servable-dir.js';
import { Logger } from '../engine/logger.js';
import { type OptionsOut, list, path as pathField, string } from '../engine/option-schema.js';
import { SERVER_OPTIONS } from '../transports/server-options.js';
import { packageRootOf } from '../engine/package-root.js';
import {
  DEFAULT_GRPC_ADDRESS,
  DEFAULT_REST_ADDRESS,
  DISTRIBUTED_ENTRY_KEYS,
  LOG_OPTIONS,
  type ListenerEntry,
  SERVABLE_ENTRY_OPTIONS,
  SERVE_CONFIG_OPTIONS,
  type ServableEntry,
  type ServeConfig,
  loadConfigFile,
  resolveServeConfig,
} from './config.js';
import { UsageError, flagHelp, parseFlags } from './args.js';
import { readKeyFile } from './encrypt.js';
import { checkServables } from './serve-check.js';
import { checkServableDirectory, checkServePlan } from './serve-validation.js';
import { type DistributedKeys, splitDistributed } from './serve-distributed.js';

export { DEFAULT_GRPC_ADDRESS, DEFAULT_REST_ADDRESS };

/**
 * The flags of `serve`. Each takes its value kind, limits, default and --help line from the
 * schema field it sets (cli/config.ts SERVE_CONFIG_OPTIONS and the schemas it is made of);
 * `plan` below writes them over the config file.
 */
const SERVE_FLAGS = {
  config: { field: pathField({ doc: 'JSON or YAML config (see docs/configuration.md); flags override it' }), metavar: 'FILE' },
  'servable-dir': { field: SERVE_CONFIG_OPTIONS.servableDirectory, metavar: 'DIR', defaultText: 'the bundled examples' },
  servables: {
    field: list(string({ doc: 'a servable name' }), { doc: 'servables to start' }),
    metavar: 'A,B',
    defaultText: 'every folder with a servable_config.ts',
  },
  'device-ids': { field: SERVABLE_ENTRY_OPTIONS.deviceIds, metavar: '0,1', defaultText: 'auto, from the cores and the model cost; docs/configuration.md' },
  'intra-op-threads': { field: SERVABLE_ENTRY_OPTIONS.intraOpThreads, metavar: 'N', defaultText: 'auto' },
  'rest-address': { field: SERVE_CONFIG_OPTIONS.rest.fields.address, metavar: 'ADDR' },
  'no-rest': { doc: 'do not start the REST transport' },
  'control-api': { field: SERVE_CONFIG_OPTIONS.rest.fields.controlApi, defaultText: 'off' },
  'max-connections': { field: SERVE_CONFIG_OPTIONS.rest.fields.maxConnections, metavar: 'N', defaultText: 'no limit' },
  'strict-http': { field: SERVE_CONFIG_OPTIONS.rest.fields.strictHttp, defaultText: 'off' },
  'grpc-address': { field: SERVE_CONFIG_OPTIONS.grpc.fields.address, metavar: 'ADDR' },
  'no-grpc': { doc: 'do not start the gRPC transport' },
  'max-msg-mb': { field: SERVER_OPTIONS.maxMsgMbSize, metavar: 'N', doc: 'request size limit of both transports in MiB' },
  'log-format': { field: LOG_OPTIONS.format, metavar: 'text|json' },
  'access-log': { field: LOG_OPTIONS.accessLog, defaultText: 'off' },
  'drain-timeout-ms': { field: SERVE_CONFIG_OPTIONS.drainTimeoutMs, metavar: 'N' },
  'watch-versions-ms': { field: SERVE_CONFIG_OPTIONS.watchVersionsMs, metavar: 'N' },
  'dec-key-file': { field: SERVABLE_ENTRY_OPTIONS.decKeyFile, metavar: 'FILE', doc: 'key of encrypted model files (all servables started by flags)' },
  'dec-mode': { field: SERVABLE_ENTRY_OPTIONS.decMode, metavar: 'MODE' },
  'distributed-address': {
    field: SERVABLE_ENTRY_OPTIONS.distributedAddress,
    metavar: 'ADDR',
    doc: 'start the distributed servable named by --servables as the coordinator of its agent ranks, listening for them here',
    defaultText: 'none: distributed servables are left out',
  },
  'rank-table': { field: SERVABLE_ENTRY_OPTIONS.rankTableJsonFile, metavar: 'FILE', defaultText: "the one rank_table*.json in the servable's folder" },
  'wait-agents-s': { field: SERVABLE_ENTRY_OPTIONS.waitAgentsTimeInSeconds, metavar: 'N', defaultText: '0: forever' },
  check: { doc: 'load and type-check the servables, print what would be served and exit (1 on problems); binds no port' },
  help: { short: 'h', doc: 'show this help' },
} as const;

export const SERVE_USAGE = `Usage: actorserve serve [options]

Serves servables over REST and gRPC until SIGINT/SIGTERM, then drains and exits 0.
Without --servable-dir it serves the bundled examples (generating their models first).

Options:
${flagHelp(SERVE_FLAGS)}`;

type Plan = OptionsOut<typeof SERVE_CONFIG_OPTIONS> & {
  readonly servableDirectory: string;
  readonly servables: readonly OptionsOut<typeof SERVABLE_ENTRY_OPTIONS>[];
  /** The bundled examples: their models are generated on first start. */
  readonly bundled: boolean;
  /** --check: load and type-check, then exit without serving. */
  readonly check: boolean;
  /** --distributed-address, --rank-table, --wait-agents-s: over the entries of the distributed servables. */
  readonly distributedFlags: DistributedKeys;
};

/** The config file with the flags written over it, checked once more with every default filled in. */
async function plan(argv: string[]): Promise<Plan | undefined> {
  const flags = parseFlags(SERVE_FLAGS, argv);
  if (flags.help) return undefined;
  const file: ServeConfig = flags.config ? await loadConfigFile(flags.config) : {};
  const bundledDir = path.join(packageRootOf(import.meta.url), 'servables');
  const servableDirectory = path.resolve(flags['servable-dir'] ?? file.servableDirectory ?? bundledDir);
  await checkServableDirectory(servableDirectory);

  // flags that set a key of every servable entry override the file's entries
  const perServable: Partial<ServableEntry> = {
    ...(flags['device-ids'] ? { deviceIds: flags['device-ids'] } : {}),
    ...(flags['intra-op-threads'] !== undefined ? { intraOpThreads: flags['intra-op-threads'] } : {}),
    ...(flags['dec-key-file'] ? { decKeyFile: flags['dec-key-file'] } : {}),
    ...(flags['dec-mode'] ? { decMode: flags['dec-mode'] } : {}),
  };
  let servables: readonly ServableEntry[] | undefined = file.servables;
  if (flags.servables) servables = flags.servables.map((name) => servables?.find((s) => s.name === name) ?? { name });
  servables ??= (await listServableNames(servableDirectory)).map((name) => ({ name }));
  if (servables.length === 0) throw new UsageError(`no servables found under ${servableDirectory}`);

  const maxMsgMbSize = flags['max-msg-mb'];
  const listener = (fromFile: ListenerEntry | null | undefined, address: string | undefined, off: boolean | undefined): ListenerEntry | null => {
    if (off || (fromFile === null && address === undefined)) return null;
    return { ...fromFile, ...(address !== undefined ? { address } : {}), ...(maxMsgMbSize !== undefined ? { maxMsgMbSize } : {}) };
  };
  const rest = listener(file.rest, flags['rest-address'], flags['no-rest']);
  const merged: ServeConfig = {
    ...file,
    servableDirectory,
    servables: servables.map((s) => ({ ...s, ...perServable })),
    rest: rest && {
      ...rest,
      ...(flags['control-api'] ? { controlApi: true } : {}),
      ...(flags['max-connections'] !== undefined ? { maxConnections: flags['max-connections'] } : {}),
      ...(flags['strict-http'] ? { strictHttp: true } : {}),
    },
    grpc: listener(file.grpc, flags['grpc-address'], flags['no-grpc']),
    log: { ...file.log, ...(flags['log-format'] ? { format: flags['log-format'] } : {}), ...(flags['access-log'] ? { accessLog: true } : {}) },
    ...(flags['drain-timeout-ms'] !== undefined ? { drainTimeoutMs: flags['drain-timeout-ms'] } : {}),
    ...(flags['watch-versions-ms'] !== undefined ? { watchVersionsMs: flags['watch-versions-ms'] } : {}),
  };
  const config = resolveServeConfig(merged);
  const checked = { ...config, servableDirectory, servables: config.servables ?? [], bundled: servableDirectory === bundledDir, check: flags.check === true,
    distributedFlags: { distributedAddress: flags['distributed-address'], rankTableJsonFile: flags['rank-table'], waitAgentsTimeInSeconds: flags['wait-agents-s'] },
  };
  await checkServePlan(checked);
  return checked;
}

async function startConfig(dir: string, entry: OptionsOut<typeof SERVABLE_ENTRY_OPTIONS>): Promise<ServableStartConfig> {
  const { name, version, decKeyFile, ...rest } = entry;
  // (a distributed servable's keys are no ServableStartConfig options)
  const options = Object.fromEntries(Object.entries(rest).filter(([key]) => !(DISTRIBUTED_ENTRY_KEYS as readonly string[]).includes(key))) as Omit<typeof rest, (typeof DISTRIBUTED_ENTRY_KEYS)[number]>;
  return new ServableStartConfig({
    ...options,
    servableDirectory: dir,
    servableName: name,
    versionNumber: version,
    ...(decKeyFile ? { decKey: await readKeyFile(decKeyFile) } : {}),
  });
}

/** A second SIGINT/SIGTERM this soon after the first is ignored; a later one exits without draining. */
export const REPEAT_SIGNAL_WINDOW_MS = 1_000;

export async function serve(argv: string[]): Promise<number> {
  const p = await plan(argv);
  if (!p) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  // The server is loaded only now, and the model generator only for the bundled servables: a
  // refused flag or config answers without loading ONNX Runtime, gRPC and uWS (about 0.5 s of CPU).
  const { ServingServer: Server } = await import('../server.js');
  const logger = new Logger({ format: p.log.format, level: p.log.level });
  const server: ServingServer = new Server();
  server.log = (line) => logger.info(line);
  if (p.log.accessLog) {
    server.requestLog = (e) =>
      logger.info('request', { requestId: e.requestId, servable: e.servable, method: e.method, version: e.version, transport: e.transport, instances: e.instances, code: e.code ?? 'OK', ms: Math.round(e.ms * 1000) / 1000 });
  }
  // which servables are distributed, and their checks, before any model is generated
  const { local: entries, distributed } = await splitDistributed(p.servableDirectory, p.servables, p.distributedFlags, (line) => logger.info(line));
  if (entries.length + distributed.length === 0) {
    throw new UsageError(`no servables to serve under ${p.servableDirectory}: ${p.servables.map((e) => e.name).join(', ')} ${p.servables.length === 1 ? 'is' : 'are'} distributed and no --distributed-address (distributedAddress) was given (docs/distributed.md)`);
  }
  if (p.bundled) {
    const { ensureExampleModels } = await import('../servables/generate-models.js');
    await ensureExampleModels(p.servableDirectory, { log: (line) => logger.info(line) });
  }
  if (p.check) {
    for (const d of distributed) logger.info(`servable '${d.name}' is distributed: --check does not check it (its ranks load on the agents)`);
    if (entries.length === 0) throw new UsageError('--check checks local servables only, and every servable to serve is distributed');
    return checkServables(server, entries.map((e) => ({ name: e.name, config: () => startConfig(p.servableDirectory, e) })), p.servableDirectory);
  }

  // Signals during start-up stop the start (a wait for agents ends at once); after it, they drain. A repeat within
  // REPEAT_SIGNAL_WINDOW_MS of the first is the same request (a supervisor that signals the
  // whole process group, a terminal that sends SIGINT with the supervisor's SIGTERM); a later
  // one exits at once.
  let firstSignalAt: number | undefined;
  let onSignal: (signal: string) => void = () => undefined;
  const handler = (signal: NodeJS.Signals): void => {
    if (firstSignalAt === undefined) {
      firstSignalAt = performance.now();
      onSignal(signal);
    } else if (performance.now() - firstSignalAt < REPEAT_SIGNAL_WINDOW_MS) {
      logger.info(`${signal} again within ${REPEAT_SIGNAL_WINDOW_MS} ms of the first: ignored, the drain goes on`);
    } else {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  let started = false;
  const stopped = new Promise<string>((resolve) => {
    onSignal = (signal) => {
      resolve(signal);
      // a wait for agents may last forever: the signal ends it
      if (!started && distributed.length > 0) void server.stop();
    };
  });
  try {
    // the distributed servables wait for their agents meanwhile (docs/distributed.md)
    await Promise.all([
      entries.length > 0 ? server.startServables(await Promise.all(entries.map((e) => startConfig(p.servableDirectory, e)))) : undefined,
      ...distributed.map((d) => server.startDistributedServable(p.servableDirectory, d.name, d.options)),
    ]);
    started = true;
    if (p.rest) {
      // every key but the address and the TLS files is a RestServerOptions key of the same name
      const { address, ssl, ...options } = p.rest;
      // (each transport logs its own "listening" line)
      await server.startRestfulServer(address, { ...options, ...(ssl ? { sslConfig: ssl } : {}) });
    }
    if (p.grpc) {
      const { address, ssl, ...options } = p.grpc;
      await server.startGrpcServer(address, { ...options, ...(ssl ? { sslConfig: ssl } : {}) });
    }
    const stopWatching = p.watchVersionsMs > 0 ? server.watchVersions(p.watchVersionsMs) : () => undefined;
    logger.info(`serving ${[...entries, ...distributed].map((e) => e.name).join(', ')} from ${p.servableDirectory}; press Ctrl-C to stop`);
    const signal = firstSignalAt !== undefined ? 'signal' : await stopped;
    stopWatching();
    logger.info(`${signal}: draining (up to ${p.drainTimeoutMs} ms)`);
    const cut = await server.drain(p.drainTimeoutMs);
    logger.info(cut > 0 ? `stopped; ${cut} requests were cut off by the drain timeout` : 'stopped');
    return 0;
  } catch (err) {
    await server.stop();
    if (firstSignalAt !== undefined && distributed.length > 0) {
      logger.info(`${await stopped} during start-up: stopped (${(err as Error).message})`);
      return 0;
    }
    throw err;
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}
