/**
 * `ServableStartConfig`: which servable to start, from where, on which device copies.
 * Mirrors MindSpore Serving 1.3's class with camelCase names; values are checked here so a bad
 * config fails at construction with a message naming the field.
 */
import { ServingError } from './errors.js';
import { checkServableName } from './servable-dir.js';

export type DeviceType = 'cpu' | 'cuda';
export type DecMode = 'AES-GCM' | 'AES-CBC';

export interface ServableStartOptions {
  /** Folder holding servable folders. */
  servableDirectory: string;
  servableName: string;
  /** One device actor (worker thread holding every model) per id; default [0]. */
  deviceIds?: number | readonly number[];
  /** 0 (default) = the newest version present. */
  versionNumber?: number;
  /** 'cpu' (default) or 'cuda' (needs onnxruntime-node installed with CUDA; the device id picks the GPU). */
  deviceType?: string | null;
  /** Stage-pool threads for TS stage functions; 0 (default) = 1 when the servable has function stages. */
  numParallelWorkers?: number;
  /** Key for encrypted model files (16, 24 or 32 bytes). */
  decKey?: Uint8Array | null;
  decMode?: DecMode;
  /** ONNX Runtime intra-op threads per device actor (default 1). */
  intraOpThreads?: number;
  /** Requests admitted at once to this servable before new ones get E_OVERLOADED (default 10000). */
  maxQueuedRequests?: number;
  /** Deadline for requests that give none (default 30000 ms). */
  defaultDeadlineMs?: number;
  /** V8 heap limit of each device actor, in MiB (default: Node's). */
  actorMaxOldGenerationMb?: number;
  /**
   * Operator overrides of a model's batching, by model file (or, for multi-file models, the
   * files joined by ';'): they replace what servable_config.ts declared.
   */
  batching?: Readonly<Record<string, BatchingOverride>>;
}

export interface BatchingOverride {
  readonly maxBatchSize?: number;
  readonly maxQueueDelayMs?: number;
}

export class ServableStartConfig {
  readonly servableDirectory: string;
  readonly servableName: string;
  readonly deviceIds: readonly number[];
  readonly versionNumber: number;
  readonly deviceType: DeviceType;
  readonly numParallelWorkers: number;
  readonly decKey: Uint8Array | undefined;
  readonly decMode: DecMode;
  readonly intraOpThreads: number;
  readonly maxQueuedRequests: number;
  readonly defaultDeadlineMs: number;
  readonly actorMaxOldGenerationMb: number | undefined;
  readonly batching: Readonly<Record<string, BatchingOverride>>;

  constructor(options: ServableStartOptions) {
    const bad = (message: string): ServingError => new ServingError('E_INVALID_ARGUMENT', `ServableStartConfig: ${message}`);
    if (typeof options?.servableDirectory !== 'string' || options.servableDirectory.length === 0) {
      throw bad('servableDirectory must be a non-empty string');
    }
    checkServableName(options.servableName);
    const ids = options.deviceIds === undefined ? [0] : typeof options.deviceIds === 'number' ? [options.deviceIds] : [...options.deviceIds];
    if (ids.length === 0 || ids.some((d) => !Number.isInteger(d) || d < 0)) throw bad('deviceIds must be integers >= 0');
    if (new Set(ids).size !== ids.length) throw bad(`deviceIds repeats an id: ${ids.join(', ')}`);
    const version = options.versionNumber ?? 0;
    if (!Number.isSafeInteger(version) || version < 0) throw bad('versionNumber must be an integer >= 0');
    const deviceType = (options.deviceType ?? 'cpu').toLowerCase();
    if (deviceType === '') throw bad('deviceType must not be empty');
    if (deviceType !== 'cpu' && deviceType !== 'cuda' && deviceType !== 'gpu') {
      throw bad(`deviceType '${options.deviceType}' is not supported; use 'cpu' or 'cuda'`);
    }
    const workers = options.numParallelWorkers ?? 0;
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw bad('numParallelWorkers must be in [0, 64]');
    const decKey = options.decKey ?? undefined;
    if (decKey !== undefined && (!(decKey instanceof Uint8Array) || ![16, 24, 32].includes(decKey.byteLength))) {
      throw bad('decKey must be 16, 24 or 32 bytes');
    }
    const decMode = options.decMode ?? 'AES-GCM';
    if (decMode !== 'AES-GCM' && decMode !== 'AES-CBC') throw bad(`decMode '${decMode}' is not supported; use 'AES-GCM' or 'AES-CBC'`);
    const intra = options.intraOpThreads ?? 1;
    if (!Number.isInteger(intra) || intra < 1 || intra > 256) throw bad('intraOpThreads must be in [1, 256]');
    const maxQueued = options.maxQueuedRequests ?? 10_000;
    if (!Number.isInteger(maxQueued) || maxQueued < 1) throw bad('maxQueuedRequests must be an integer >= 1');
    const deadline = options.defaultDeadlineMs ?? 30_000;
    if (!(deadline > 0) || !Number.isFinite(deadline)) throw bad('defaultDeadlineMs must be a positive number');
    const heap = options.actorMaxOldGenerationMb;
    if (heap !== undefined && (!Number.isInteger(heap) || heap < 16)) throw bad('actorMaxOldGenerationMb must be an integer >= 16');

    const batching = options.batching ?? {};
    for (const [model, o] of Object.entries(batching)) {
      if (typeof o !== 'object' || o === null) throw bad(`batching['${model}'] must be an object`);
      for (const key of Object.keys(o)) {
        if (key !== 'maxBatchSize' && key !== 'maxQueueDelayMs') throw bad(`batching['${model}'] has an unknown key '${key}'`);
      }
      if (o.maxBatchSize !== undefined && (!Number.isInteger(o.maxBatchSize) || o.maxBatchSize < 1)) {
        throw bad(`batching['${model}'].maxBatchSize must be an integer >= 1`);
      }
      if (o.maxQueueDelayMs !== undefined && (!(o.maxQueueDelayMs >= 0) || !Number.isFinite(o.maxQueueDelayMs))) {
        throw bad(`batching['${model}'].maxQueueDelayMs must be a number >= 0`);
      }
    }

    this.servableDirectory = options.servableDirectory;
    this.servableName = options.servableName;
    this.deviceIds = ids;
    this.versionNumber = version;
    this.deviceType = deviceType === 'cpu' ? 'cpu' : 'cuda';
    this.numParallelWorkers = workers;
    this.decKey = decKey;
    this.decMode = decMode;
    this.intraOpThreads = intra;
    this.maxQueuedRequests = maxQueued;
    this.defaultDeadlineMs = deadline;
    this.actorMaxOldGenerationMb = heap;
    this.batching = batching;
  }
}
