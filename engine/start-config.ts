/**
 * `ServableStartConfig`: which servable to start, from where, on which device copies.
 * Mirrors MindSpore Serving 1.3's class with camelCase names. Its options are declared once in
 * SERVABLE_START_OPTIONS (kinds, limits, defaults, docs): the `actorserve serve` config file and
 * flags reuse those fields, so a limit reads the same from every surface. A bad config fails at
 * construction with a message naming the field; an unknown key is refused with the closest
 * known one suggested.
 */
import { type OptionsIn, type OptionsOut, bytes, checkOptions, integer, invalidArgument, list, map, number, object, oneOf, path, string } from './option-schema.js';
import { checkServableName } from './servable-dir.js';

export type DeviceType = 'cpu' | 'cuda';
export type DecMode = 'AES-GCM' | 'AES-CBC';

/** Operator overrides of one model's batching; they replace what servable_config.ts declared. */
export const BATCHING_OVERRIDE_OPTIONS = {
  maxBatchSize: integer({ min: 1, doc: 'largest batch a device actor runs' }),
  maxQueueDelayMs: number({ min: 0, doc: 'how long a batch may wait to fill up' }),
} as const;
export type BatchingOverride = Readonly<OptionsIn<typeof BATCHING_OVERRIDE_OPTIONS>>;

export const SERVABLE_START_OPTIONS = {
  servableDirectory: path({ required: true, doc: 'folder holding servable folders' }),
  servableName: string({ required: true, doc: 'the servable (folder name) to start' }),
  deviceIds: list(integer({ min: 0, doc: 'a device id' }), {
    single: true,
    nonEmpty: true,
    unique: true,
    item: 'id',
    nullable: 'as-absent',
    doc: 'one device actor (worker thread holding every model) per id',
  }),
  versionNumber: integer({ min: 0, default: 0, doc: 'version to start; 0 = the newest present' }),
  deviceType: oneOf<DeviceType, string>()({
    values: ['cpu', 'cuda'],
    aliases: { gpu: 'cuda' },
    ignoreCase: true,
    nullable: 'as-absent',
    default: 'cpu',
    doc: 'cpu or cuda (needs onnxruntime-node with CUDA; the device id picks the GPU)',
  }),
  numParallelWorkers: integer({ min: 0, max: 64, default: 0, doc: 'stage-pool threads for TS stages; 0 = 1 when the servable has function stages' }),
  decKey: bytes({ lengths: [16, 24, 32], nullable: 'as-absent', doc: 'key of encrypted model files' }),
  decMode: oneOf<DecMode>()({ values: ['AES-GCM', 'AES-CBC'], default: 'AES-GCM', doc: 'cipher of encrypted model files' }),
  intraOpThreads: integer({ min: 1, max: 256, nullable: 'as-absent', doc: 'ONNX Runtime threads per device actor' }),
  maxQueuedRequests: integer({ min: 1, default: 10_000, doc: 'requests admitted at once; beyond: E_OVERLOADED (HTTP 503)' }),
  defaultDeadlineMs: number({ min: 0, exclusiveMin: true, default: 30_000, doc: 'deadline of requests that name none' }),
  actorMaxOldGenerationMb: integer({ min: 16, doc: "V8 heap limit of each device actor in MiB (default: Node's)" }),
  batching: map(object(BATCHING_OVERRIDE_OPTIONS, { doc: 'batching of one model' }), {
    default: {},
    doc: "per model file (or a multi-file model's files joined by ';'): overrides servable_config.ts",
  }),
} as const;

/** What `new ServableStartConfig(...)` takes. */
export type ServableStartOptions = OptionsIn<typeof SERVABLE_START_OPTIONS>;
type StartSettings = OptionsOut<typeof SERVABLE_START_OPTIONS>;

export class ServableStartConfig implements StartSettings {
  // `declare`: set by Object.assign below from the checked options; `implements` keeps these in
  // step with the schema.
  declare readonly servableDirectory: string;
  declare readonly servableName: string;
  /** undefined: chosen at start from the cores and the model's cost (engine/device-plan.ts). */
  declare readonly deviceIds: readonly number[] | undefined;
  declare readonly versionNumber: number;
  declare readonly deviceType: DeviceType;
  declare readonly numParallelWorkers: number;
  declare readonly decKey: Uint8Array | undefined;
  declare readonly decMode: DecMode;
  /** undefined: chosen at start with the device actors. */
  declare readonly intraOpThreads: number | undefined;
  declare readonly maxQueuedRequests: number;
  declare readonly defaultDeadlineMs: number;
  declare readonly actorMaxOldGenerationMb: number | undefined;
  declare readonly batching: Readonly<Record<string, BatchingOverride>>;

  constructor(options: ServableStartOptions) {
    const settings: StartSettings = checkOptions(SERVABLE_START_OPTIONS, options, invalidArgument('ServableStartConfig'));
    checkServableName(settings.servableName);
    Object.assign(this, settings);
  }
}
