/**
 * KServe v2 model names on actorserve's servables, server and model metadata, readiness.
 *
 * Model names: a servable `add` is the model `add`, which addresses its default method (its
 * only method, else the first one its servable_config.ts registers); `add.add_cast` addresses
 * the method `add_cast` of servable `add`. Servable and method names may both contain '.':
 * a name that is a loaded servable is that servable's default method; otherwise the name is
 * split at a '.', trying the longest loaded servable name first (`a.b.c` with servables `a`
 * and `a.b` loaded is method `c` of `a.b`).
 *
 * Versions are decimal strings ("1", "2"); absent (or "0") is the newest loaded version.
 */
import { ServingError } from '../../engine/errors.js';
import type { LookupContext, MethodInfo, MethodTarget, ServingEngine } from '../../facade/engine.js';
import type { MethodLayout, TensorLayout } from '../../engine/inference.js';
import { ownPackageVersion } from '../../engine/package-root.js';
import { toV2Datatype, type V2Datatype } from './datatypes.js';

/** Stateful sequences (docs/sequences.md): parameters sequence_id (integer or string), sequence_start, sequence_end. */
export const SEQUENCE_EXTENSIONS: readonly string[] = ['sequence', 'sequence(string_id)'];

/** What this server's v2 REST endpoints implement beyond the core (server metadata `extensions`); generate is HTTP only, as Triton's. */
export const V2_EXTENSIONS: readonly string[] = ['binary_tensor_data', ...SEQUENCE_EXTENSIONS, 'generate'];

export interface V2ServerMetadata {
  readonly name: string;
  readonly version: string;
  readonly extensions: readonly string[];
}

export interface V2TensorMetadata {
  readonly name: string;
  /** '' where the method takes any datatype (an input feeding a TypeScript stage without a declared dtype). */
  readonly datatype: V2Datatype | '';
  /** -1 for a dynamic dim, including the leading batch dim of a batched method; [-1] when the rank is unknown. */
  readonly shape: readonly number[];
}

export interface V2ModelMetadata {
  readonly name: string;
  /** Every loaded version of the servable, ascending. */
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly V2TensorMetadata[];
  readonly outputs: readonly V2TensorMetadata[];
  /**
   * How the name maps onto actorserve: `servable`, `method`, `version` (the one described),
   * `batched` ("true": tensors carry a leading batch dim of instances), `methods` (every model
   * name of the servable, comma-separated).
   */
  readonly properties: Readonly<Record<string, string>>;
}

/** Platform reported in model metadata: a method may chain ONNX models and TypeScript stages, so no one backend names it. */
export const V2_PLATFORM = 'actorserve';

const VERSION_RE = /^\d{1,10}$/;

/** A v2 version string → actorserve's version number (0 = the newest loaded). E_INVALID_ARGUMENT (400) when malformed. */
export function parseV2Version(version: string | undefined): number {
  if (version === undefined || version === '') return 0;
  if (!VERSION_RE.test(version) || Number(version) > 0xfffffffe) {
    throw new ServingError('E_INVALID_ARGUMENT', `model version ${JSON.stringify(version.slice(0, 40))} is not an integer in [0, 4294967294]`);
  }
  return Number(version);
}

/** A v2 model name resolved to a servable and one of its methods. */
export interface V2ModelRef {
  readonly servable: string;
  readonly method: string;
}

/** The loaded methods of `servable` (newest version), or undefined when it is not loaded. */
function methodsOf(engine: ServingEngine, servable: string): readonly MethodInfo[] | undefined {
  try {
    return engine.metadata(servable).methods;
  } catch (err) {
    if (err instanceof ServingError && err.code === 'E_UNKNOWN_SERVABLE') return undefined;
    throw err;
  }
}

/** Resolves a model name (see the header); undefined when no loaded servable matches. */
export function v2ModelRef(engine: ServingEngine, model: string): V2ModelRef | undefined {
  const whole = methodsOf(engine, model);
  if (whole !== undefined) return { servable: model, method: whole[0]?.name ?? '' };
  for (let dot = model.lastIndexOf('.'); dot > 0; dot = model.lastIndexOf('.', dot - 1)) {
    const servable = model.slice(0, dot);
    if (methodsOf(engine, servable) !== undefined) return { servable, method: model.slice(dot + 1) };
  }
  return undefined;
}

/**
 * The target a v2 request runs: resolved through `engine.lookup`, so an unknown model,
 * version or method is refused (404) and counted under `context`'s transport like every
 * request.
 */
export function v2Target(engine: ServingEngine, model: string, version: number, context: LookupContext): MethodTarget {
  const ref = v2ModelRef(engine, model);
  return engine.lookup(ref?.servable ?? model, ref?.method ?? '', version, context);
}

/** Resolves for metadata and readiness (not counted: no request runs). */
function describeModel(engine: ServingEngine, model: string, versionText: string | undefined): { ref: V2ModelRef; version: number; versions: readonly number[]; info: MethodInfo; all: readonly MethodInfo[] } {
  const version = parseV2Version(versionText);
  const ref = v2ModelRef(engine, model);
  // an unknown servable: the facade's own message (E_UNKNOWN_SERVABLE, 404)
  const meta = engine.metadata(ref?.servable ?? model, version);
  const info = meta.methods.find((m) => m.name === ref!.method);
  if (info === undefined) {
    throw new ServingError('E_UNKNOWN_METHOD', `model ${JSON.stringify(model)}: servable '${meta.name}' has no method ${JSON.stringify(ref!.method)} (models: ${modelNames(meta.name, meta.methods).join(', ')})`);
  }
  return { ref: ref!, version: meta.version, versions: meta.versions, info, all: meta.methods };
}

/** The method a model name addresses (for decoders that need its inputs first); throws as v2ModelMetadata does, not counted. */
export function v2ModelInfo(engine: ServingEngine, model: string, version?: string): MethodInfo {
  return describeModel(engine, model, version).info;
}

/** Every v2 model name of a servable: its own name (the default method), then `<servable>.<method>` for each method. */
export function modelNames(servable: string, methods: readonly MethodInfo[]): string[] {
  return [servable, ...methods.map((m) => `${servable}.${m.name}`)];
}

export function v2ServerMetadata(_engine: ServingEngine, extensions: readonly string[] = V2_EXTENSIONS): V2ServerMetadata {
  return { name: 'actorserve', version: ownPackageVersion(), extensions };
}

/** GET /v2/models/{name}[/versions/{v}]: throws ServingError 404 for an unknown model, version or method, 400 for a malformed version. */
export function v2ModelMetadata(engine: ServingEngine, model: string, version?: string): V2ModelMetadata {
  const d = describeModel(engine, model, version);
  const layout = layoutOf(d.info);
  return {
    name: model,
    versions: d.versions.map(String),
    platform: V2_PLATFORM,
    inputs: d.info.inputs.map((input, i) => tensorMetadata(input.name, layout.inputs[i]!, layout.batched)),
    outputs: d.info.outputs.map((name, i) => tensorMetadata(name, layout.outputs[i]!, layout.batched)),
    properties: {
      servable: d.ref.servable,
      method: d.info.name,
      version: String(d.version),
      batched: String(layout.batched),
      methods: modelNames(d.ref.servable, d.all).join(','),
    },
  };
}

/** GET /v2/models/{name}[/versions/{v}]/ready: whether that servable version can serve now; throws 404 for an unknown one. */
export function v2ModelReady(engine: ServingEngine, model: string, version?: string): boolean {
  const d = describeModel(engine, model, version);
  return engine.health().servables.some((s) => s.name === d.ref.servable && s.version === d.version && s.ready);
}

/** Server readiness (GET /v2/health/ready): every loaded servable version can serve, and at least one is loaded. */
export function v2ServerReady(engine: ServingEngine): boolean {
  return engine.health().ready;
}

/** A method's layout; a method described without one (never on a server) is taken whole, types unknown. */
export function layoutOf(info: MethodInfo): MethodLayout {
  return info.layout ?? { batched: false, inputs: info.inputs.map(() => UNKNOWN), outputs: info.outputs.map(() => UNKNOWN) };
}

const UNKNOWN: TensorLayout = Object.freeze({ batched: false });

function tensorMetadata(name: string, t: TensorLayout, batched: boolean): V2TensorMetadata {
  const dims = t.dims?.map((d) => (typeof d === 'number' ? d : -1));
  const shape = dims === undefined ? [-1] : batched ? [-1, ...dims] : dims;
  return { name, datatype: t.dtype === undefined ? '' : toV2Datatype(t.dtype), shape };
}
