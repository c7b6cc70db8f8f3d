/**
 * `actorserve serve`: starts servables and the transports from flags and/or a config file,
 * serves until SIGINT/SIGTERM, then drains (in-flight work finishes, up to the drain timeout)
 * and exits 0. A second signal exits at once.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ServingServer } from '../server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { listServableNames } from '../engine/servable-dir.js';
import { Logger } from '../engine/logger.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { type ListenerEntry, type ServeConfig, type ServableEntry, loadConfigFile } from './config.js';
import { UsageError, intList, positiveNumber } from './args.js';
import { cipherMode, readKeyFile } from './encrypt.js';

export const DEFAULT_REST_ADDRESS = '127.0.0.1:1500';
export const DEFAULT_GRPC_ADDRESS = '127.0.0.1:5500';

export const SERVE_USAGE = `Usage: actorserve serve [options]

Serves servables over REST and gRPC until SIGINT/SIGTERM, then drains and exits 0.
Without --servable-dir it serves the bundled examples (generating their models first).

Options:
  --config FILE            JSON or YAML config (see docs/configuration.md); flags override it
  --servable-dir DIR       folder of servable folders
  --servables A,B          servables to start (default: every folder with a servable_config.ts)
  --device-ids 0,1         device actors per servable (default: 0)
  --intra-op-threads N     ONNX Runtime threads per device actor (default: 1)
  --rest-address ADDR      host:port or unix:/path (default: ${DEFAULT_REST_ADDRESS})
  --no-rest                do not start the REST transport
  --grpc-address ADDR      host:port or unix:/path (default: ${DEFAULT_GRPC_ADDRESS})
  --no-grpc                do not start the gRPC transport
  --max-msg-mb N           request size limit of both transports in MiB (default: 100)
  --log-format text|json   log line format (default: text)
  --access-log             log every request (with its request id)
  --drain-timeout-ms N     how long a stop waits for in-flight work (default: 30000)
  --watch-versions-ms N    poll for new version folders every N ms and hot-load them (default: off)
  --dec-key-file FILE      key of encrypted model files (all servables started by flags)
  --dec-mode MODE          AES-GCM (default) or AES-CBC
  -h, --help               show this help
`;

interface ServePlan {
  readonly servableDirectory: string;
  readonly bundled: boolean;
  /** Explicit servable entries; undefined = every servable folder, with `defaults` applied. */
  readonly servables: readonly ServableEntry[] | undefined;
  readonly defaults: Pick<ServableEntry, 'deviceIds' | 'intraOpThreads' | 'decKeyFile' | 'decMode'>;
  readonly rest: ListenerEntry | null;
  readonly grpc: ListenerEntry | null;
  readonly logFormat: 'text' | 'json';
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly accessLog: boolean;
  readonly drainTimeoutMs: number;
  readonly watchVersionsMs: number;
}

async function plan(argv: string[]): Promise<ServePlan | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      'servable-dir': { type: 'string' },
      servables: { type: 'string' },
      'device-ids': { type: 'string' },
      'intra-op-threads': { type: 'string' },
      'rest-address': { type: 'string' },
      'no-rest': { type: 'boolean' },
      'grpc-address': { type: 'string' },
      'no-grpc': { type: 'boolean' },
      'max-msg-mb': { type: 'string' },
      'log-format': { type: 'string' },
      'access-log': { type: 'boolean' },
      'drain-timeout-ms': { type: 'string' },
      'watch-versions-ms': { type: 'string' },
      'dec-key-file': { type: 'string' },
      'dec-mode': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const file: ServeConfig = values.config ? await loadConfigFile(values.config) : {};
  const bundledDir = path.join(findProjectRoot(path.dirname(fileURLToPath(import.meta.url))), 'servables');
  const servableDirectory = path.resolve(values['servable-dir'] ?? file.servableDirectory ?? bundledDir);

  const deviceIds = values['device-ids'] ? intList(values['device-ids'], '--device-ids') : undefined;
  const intra = values['intra-op-threads'] ? intList(values['intra-op-threads'], '--intra-op-threads')[0] : undefined;
  const decMode = values['dec-mode'] ? cipherMode(values['dec-mode'], '--dec-mode') : undefined;
  const defaults = {
    ...(deviceIds ? { deviceIds } : {}),
    ...(intra ? { intraOpThreads: intra } : {}),
    ...(values['dec-key-file'] ? { decKeyFile: path.resolve(values['dec-key-file']) } : {}),
    ...(decMode ? { decMode } : {}),
  };
  let servables = file.servables;
  if (values.servables) {
    const names = values.servables.split(',').map((s) => s.trim()).filter(Boolean);
    servables = names.map((name) => servables?.find((s) => s.name === name) ?? { name });
  }
  servables = servables?.map((s) => ({ ...s, ...defaults })); // flags override the file
  const maxMsgMb = values['max-msg-mb'] ? positiveNumber(values['max-msg-mb'], '--max-msg-mb') : undefined;
  const listener = (fromFile: ListenerEntry | null | undefined, flag: string | undefined, off: boolean | undefined, fallback: string): ListenerEntry | null => {
    if (off) return null;
    if (fromFile === null && !flag) return null;
    const base: ListenerEntry = fromFile ?? { address: fallback };
    return { ...base, ...(flag ? { address: flag } : {}), ...(maxMsgMb !== undefined ? { maxMsgMbSize: maxMsgMb } : {}) };
  };
  const format = values['log-format'] ?? file.log?.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--log-format takes text or json, got '${format}'`);
  return {
    servableDirectory,
    bundled: servableDirectory === bundledDir,
    servables,
    defaults,
    rest: listener(file.rest, values['rest-address'], values['no-rest'], DEFAULT_REST_ADDRESS),
    grpc: listener(file.grpc, values['grpc-address'], values['no-grpc'], DEFAULT_GRPC_ADDRESS),
    logFormat: format,
    logLevel: file.log?.level ?? 'info',
    accessLog: values['access-log'] ?? file.log?.accessLog ?? false,
    drainTimeoutMs: values['drain-timeout-ms'] ? positiveNumber(values['drain-timeout-ms'], '--drain-timeout-ms') : (file.drainTimeoutMs ?? 30_000),
    watchVersionsMs: values['watch-versions-ms'] ? positiveNumber(values['watch-versions-ms'], '--watch-versions-ms') : (file.watchVersionsMs ?? 0),
  };
}

async function startConfig(dir: string, entry: ServableEntry): Promise<ServableStartConfig> {
  const decKey = entry.decKeyFile ? await readKeyFile(entry.decKeyFile) : undefined;
  return new ServableStartConfig({
    servableDirectory: dir,
    servableName: entry.name,
    ...(entry.version !== undefined ? { versionNumber: entry.version } : {}),
    ...(entry.deviceIds ? { deviceIds: entry.deviceIds } : {}),
    ...(entry.deviceType ? { deviceType: entry.deviceType } : {}),
    ...(entry.numParallelWorkers !== undefined ? { numParallelWorkers: entry.numParallelWorkers } : {}),
    ...(entry.intraOpThreads !== undefined ? { intraOpThreads: entry.intraOpThreads } : {}),
    ...(entry.maxQueuedRequests !== undefined ? { maxQueuedRequests: entry.maxQueuedRequests } : {}),
    ...(entry.defaultDeadlineMs !== undefined ? { defaultDeadlineMs: entry.defaultDeadlineMs } : {}),
    ...(decKey ? { decKey, decMode: entry.decMode ?? 'AES-GCM' } : {}),
    ...(entry.batching ? { batching: entry.batching } : {}),
  });
}

export async function serve(argv: string[]): Promise<number> {
  const p = await plan(argv);
  if (!p) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const logger = new Logger({ format: p.logFormat, level: p.logLevel });
  const server = new ServingServer();
  server.log = (line) => logger.info(line);
  if (p.accessLog) {
    server.requestLog = (e) =>
      logger.info('request', { requestId: e.requestId, servable: e.servable, method: e.method, version: e.version, transport: e.transport, instances: e.instances, code: e.code ?? 'OK', ms: Math.round(e.ms * 1000) / 1000 });
  }
  if (p.bundled) await ensureExampleModels(p.servableDirectory, { log: (line) => logger.info(line) });
  const entries: readonly ServableEntry[] =
    p.servables ??
    (await listServableNames(p.servableDirectory)).map((name) => ({ name, ...p.defaults }));
  if (entries.length === 0) throw new UsageError(`no servables found under ${p.servableDirectory}`);

  // Signals during start-up stop the start; after it, they drain.
  let signals = 0;
  let onSignal: (signal: string) => void = () => undefined;
  const handler = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    onSignal(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  try {
    const stopped = new Promise<string>((resolve) => {
      onSignal = resolve;
    });
    await server.startServables(await Promise.all(entries.map((e) => startConfig(p.servableDirectory, e))));
    if (p.rest) {
      const rest = await server.startRestfulServer(p.rest.address, {
        ...(p.rest.maxMsgMbSize !== undefined ? { maxMsgMbSize: p.rest.maxMsgMbSize } : {}),
        ...(p.rest.ssl ? { sslConfig: p.rest.ssl } : {}),
      });
      logger.info(`REST listening on ${p.rest.ssl ? 'https' : 'http'}://${rest.address}`);
    }
    if (p.grpc) {
      // (the gRPC server logs its own "listening" line)
      await server.startGrpcServer(p.grpc.address, {
        ...(p.grpc.maxMsgMbSize !== undefined ? { maxMsgMbSize: p.grpc.maxMsgMbSize } : {}),
        ...(p.grpc.ssl ? { sslConfig: p.grpc.ssl } : {}),
      });
    }
    const stopWatching = p.watchVersionsMs > 0 ? server.watchVersions(p.watchVersionsMs) : () => undefined;
    logger.info(`serving ${entries.map((e) => e.name).join(', ')} from ${p.servableDirectory}; press Ctrl-C to stop`);
    const signal = signals > 0 ? 'signal' : await stopped;
    stopWatching();
    logger.info(`${signal}: draining (up to ${p.drainTimeoutMs} ms)`);
    const cut = await server.drain(p.drainTimeoutMs);
    logger.info(cut > 0 ? `stopped; ${cut} requests were cut off by the drain timeout` : 'stopped');
    return 0;
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  }
}
