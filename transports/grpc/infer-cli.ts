/**
 * `actorserve infer`: one request to a gRPC server from the command line, results printed as
 * JSON on stdout.
 *
 *   actorserve infer <address> <servable> <method> --input NAME=VALUE... [--version N]
 *                    [--protocol mindspore|kserve] [--timeout-ms N] [--ca FILE] [--cert FILE --key FILE]
 *
 * `--protocol kserve` sends the inputs as one KServe v2 ModelInfer (the Open Inference
 * Protocol's gRPC service) to the model `<servable>.<method>`; each input is the whole v2
 * tensor (with its batch dim), untyped numbers take the datatype the model metadata gives, and
 * the reply is printed as v2 JSON: `{"model_name","model_version","outputs":[{"name",
 * "datatype","shape","data"}]}` with `data` flat.
 *
 * <address> is read as `bench` reads its target (transports/target-address.ts): host:port,
 * host (port 5500), grpc://host:port, http://host:port, [::1]:port or unix:/path. An address
 * that answers HTTP/1.1 (a REST port) is reported at once as not gRPC (http1-probe.ts).
 *
 * VALUE is `@file.npy` (a NumPy array), `@file` (any other file: a bytes scalar), or JSON: a
 * number, boolean, string, nested list, or `{"dtype", "shape", "data"}`. Plain JSON numbers
 * become int32 when every one is written as an integer, float32 otherwise (REST's rule);
 * `NAME:DTYPE=JSON` picks the dtype. The inputs together form one instance. Untyped numbers
 * are sent in the method's input dtype when the server tells it (`actorserve.v1`
 * GetModelMetadata: a declared input or one feeding a model), as REST converts JSON numbers;
 * against a server without that RPC (MindSpore's own) they stay int32/float32.
 *
 * Output: `{"instances":[{"y":[[2.0,4.0],[6.0,8.0]]}]}`, floats written as REST writes them
 * (the shortest text that reads back to the same float32/float64) (a failed instance holds
 * `{"error_code","error_msg"}`), or `{"error_code","error_msg"}` when the request failed.
 * Exit status 0 when every instance succeeded, 1 when anything failed, 2 on a usage error.
 */
import { readFileSync } from 'node:fs';
import { type DType, isDType, isNumericDType } from '../../engine/dtypes.js';
import { ServingError, toServingError } from '../../engine/errors.js';
import { type Tensor, elementCount } from '../../engine/tensor.js';
import { Client, type SSLConfig } from './client.js';
import { KServeClient } from './kserve-client.js';
import { fromV2Datatype, isV2Datatype, toV2Datatype } from '../kserve/datatypes.js';
import { readNpy } from '../../engine/npy.js';
import { type InputValue, tensorToPlain, toInputTensor } from './values.js';
import type { MethodInput } from '../../facade/engine.js';
import { type CommandIO, DEFAULT_IO, NOT_GRPC, UsageError, grpcTarget, notGrpc, notGrpcMessage, readCommandLine } from './cli-common.js';
import { tensorJson } from '../rest/json-codec.js';
import { type TargetAddress, TargetError } from '../target-address.js';

export const INFER_USAGE = `usage: actorserve infer <address> <servable> <method> --input NAME=VALUE... [options]

Sends one instance to a gRPC server (MSService/Predict) and prints the outputs as JSON.
With --protocol kserve: one KServe v2 ModelInfer (inference.GRPCInferenceService) to the
model <servable>.<method>, printed as a v2 JSON response.

  <address>            the gRPC server: host:port, grpc://host:port, [::1]:port or
                       unix:/path (default port 5500; not the REST port)
  -i, --input NAME=VALUE
                       one input (repeat for each); VALUE is
                         @file.npy   a NumPy array (little-endian, C order)
                         @file       any other file, sent as a bytes scalar
                         JSON        number, boolean, string, nested list, or
                                     {"dtype": "float16", "shape": [2], "data": [1, 2]}
                       plain JSON numbers are int32 when all are integers, else float32;
                       NAME:DTYPE=JSON picks the dtype (e.g. x:float32=[1, 2]); untyped
                       numbers are sent in the method's input dtype when the server
                       tells it (actorserve's metadata RPC)
  --version N          servable version (default 0: the newest)
  --protocol P         mindspore (default: MSService/Predict, the inputs form one
                       instance) or kserve (KServe v2 gRPC ModelInfer: each input is the
                       whole v2 tensor, batch dim included, e.g. x=[[1, 2]] for one row;
                       untyped numbers take the model's datatype from ModelMetadata)
  --timeout-ms N       deadline of the call
  --ca FILE            TLS: the CA that the server's certificate chains to
  --cert FILE, --key FILE
                       mutual TLS: the client's certificate and key
  -h, --help           this text

Exit status: 0 all instances succeeded, 1 the request or an instance failed, 2 usage error.`;

export type { CommandIO };

interface Parsed {
  /** As typed, for messages. */
  address: string;
  target: TargetAddress;
  servable: string;
  method: string;
  inputs: Record<string, InputValue>;
  /** Inputs given as plain JSON numbers without a dtype: sent in the method's declared dtype when the server says one. */
  untyped: Map<string, UntypedNumbers>;
  versionNumber: number;
  protocol: InferProtocol;
  timeoutMs: number | undefined;
  ssl: SSLConfig | undefined;
}

/** `--protocol`: MindSpore's MSService/Predict, or the Open Inference Protocol's ModelInfer. */
type InferProtocol = 'mindspore' | 'kserve';
const INFER_PROTOCOLS: readonly InferProtocol[] = ['mindspore', 'kserve'];

/** Runs `actorserve infer ...`; `argv` is what follows `infer` (a leading 'infer' is skipped). Resolves with the exit status. */
export async function runInferCommand(argv: readonly string[], io: CommandIO = DEFAULT_IO): Promise<number> {
  const args = argv[0] === 'infer' ? argv.slice(1) : [...argv];
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout(`${INFER_USAGE}\n`);
    return 0;
  }
  let parsed: Parsed;
  try {
    parsed = parseArgs(args);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ServingError || err instanceof TargetError) {
      // one line and a pointer, as the other commands do: the usage text would bury the reason
      io.stderr(`actorserve infer: ${err.message}\nRun "actorserve infer --help" for usage.\n`);
      return 2;
    }
    throw err;
  }
  const options = {
    versionNumber: parsed.versionNumber,
    ...(parsed.timeoutMs !== undefined ? { timeoutMs: parsed.timeoutMs } : {}),
    ...(parsed.ssl ? { sslConfig: parsed.ssl } : {}),
  };
  let client: Client | KServeClient;
  try {
    client =
      parsed.protocol === 'kserve'
        ? new KServeClient(grpcTarget(parsed.target), options)
        : new Client(grpcTarget(parsed.target), parsed.servable, parsed.method, options);
  } catch (err) {
    io.stderr(`actorserve infer: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    // A REST port would hold a call until grpc-js gives up on the HTTP/2 handshake: probe
    // alongside, and report a plaintext address that answers HTTP/1.1 at once.
    const probe = notGrpc(parsed.target, parsed.ssl !== undefined);
    const call = client instanceof KServeClient ? inferV2(client, parsed) : inferMindSpore(client, parsed, probe);
    const answer = await Promise.race([call, probe]);
    if (answer === NOT_GRPC) {
      call.catch(() => undefined); // cancelled by close() below
      io.stdout(`${JSON.stringify({ error_code: 'E_UNAVAILABLE', error_msg: notGrpcMessage(parsed.address, 'infer') })}\n`);
      return 1;
    }
    io.stdout(`${answer.json}\n`);
    return answer.failed ? 1 : 0;
  } catch (err) {
    const e = toServingError(err);
    io.stdout(`${JSON.stringify({ error_code: e.code, error_msg: e.message })}\n`);
    return 1;
  } finally {
    client.close();
  }
}

/** What a call printed: its JSON, and whether anything failed. */
interface Answer {
  readonly json: string;
  readonly failed: boolean;
}

/** MSService/Predict: the inputs as one instance; `{"instances":[...]}` with an error object per failed instance. */
async function inferMindSpore(client: Client, parsed: Parsed, probe: Promise<typeof NOT_GRPC>): Promise<Answer> {
  if (parsed.untyped.size > 0) await Promise.race([typeUntypedInputs(client, parsed), probe]);
  const outcomes = await client.inferEach([parsed.inputs]);
  let failed = false;
  const instances = outcomes.map((o) => {
    if (o instanceof ServingError) {
      failed = true;
      return JSON.stringify({ error_code: o.code, error_msg: o.message });
    }
    return `{${Object.entries(o)
      .map(([name, t]) => `${JSON.stringify(name)}:${outputJson(t, name)}`)
      .join(',')}}`;
  });
  return { json: `{"instances":[${instances.join(',')}]}`, failed };
}

/** KServe v2 ModelInfer to `<servable>.<method>`: a v2 JSON response, `data` flat. */
async function inferV2(client: KServeClient, parsed: Parsed): Promise<Answer> {
  const model = `${parsed.servable}.${parsed.method}`;
  const version = parsed.versionNumber > 0 ? String(parsed.versionNumber) : undefined;
  if (parsed.untyped.size > 0) {
    // untyped numbers in the model's datatype, as v2 REST converts JSON numbers; errors are left to the infer call
    const inputs = await client.modelMetadata(model, version).then((m) => m.inputs, () => undefined);
    retypeUntyped(parsed, (name) => {
      const datatype = inputs?.find((i) => i.name === name)?.datatype;
      return isV2Datatype(datatype) ? fromV2Datatype(datatype) : undefined;
    });
  }
  const r = await client.infer(model, parsed.inputs, version !== undefined ? { version } : {});
  const outputs = Object.entries(r.outputs).map(
    ([name, t]) =>
      `{"name":${JSON.stringify(name)},"datatype":"${toV2Datatype(t.dtype)}","shape":${JSON.stringify(t.shape)},"data":${outputJson({ ...t, shape: [elementCount(t.shape)] }, name)}}`,
  );
  return { json: `{"model_name":${JSON.stringify(r.modelName)},"model_version":${JSON.stringify(r.modelVersion)},"outputs":[${outputs.join(',')}]}`, failed: false };
}

/** One output as REST writes it: floats in their shortest round-trip text (2.0, 0.1), other dtypes as plain JSON values. */
function outputJson(t: Tensor, name: string): string {
  if (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16') return tensorJson(t, name);
  return JSON.stringify(tensorToPlain(t));
}

/** The flags `infer` takes (for the suggestion when one is mistyped). */
const INFER_FLAGS = ['input', 'version', 'protocol', 'timeout-ms', 'ca', 'cert', 'key', 'help'];

function parseArgs(args: readonly string[]): Parsed {
  const inputs: Record<string, InputValue> = {};
  const untyped = new Map<string, UntypedNumbers>();
  let protocol: InferProtocol = 'mindspore';
  const line = readCommandLine(args, 'infer', ['servable', 'method'], INFER_FLAGS, (arg, value) => {
    switch (arg) {
      case '-i':
      case '--input': {
        const [name, tensor, numbers] = parseInput(value());
        if (Object.hasOwn(inputs, name)) throw new UsageError(`input '${name}' is given twice`);
        inputs[name] = tensor;
        if (numbers) untyped.set(name, numbers);
        return true;
      }
      case '--protocol': {
        const p = value();
        if (!INFER_PROTOCOLS.includes(p as InferProtocol)) throw new UsageError(`--protocol takes ${INFER_PROTOCOLS.join(' or ')}, got ${JSON.stringify(p)}`);
        protocol = p as InferProtocol;
        return true;
      }
      default:
        return false;
    }
  });
  if (Object.keys(inputs).length === 0) throw new UsageError('give at least one --input NAME=VALUE');
  const [servable, method] = line.rest as [string, string];
  return { address: line.address, target: line.target, servable, method, inputs, untyped, versionNumber: line.versionNumber, protocol, timeoutMs: line.timeoutMs, ssl: line.ssl };
}

/**
 * Asks the server for the method's input dtypes (`actorserve.v1` GetModelMetadata) and sends each
 * untyped numeric input in its declared or model dtype, as REST converts JSON numbers. A server
 * without the metadata RPC (MindSpore's own) or a method that declares nothing leaves them as
 * typed from the JSON (int32 or float32); errors of the metadata call are left to the predict call.
 */
async function typeUntypedInputs(client: Client, parsed: Parsed): Promise<void> {
  let inputs: readonly MethodInput[] | undefined;
  try {
    inputs = (await client.metadata()).methods.find((m) => m.name === parsed.method)?.inputs;
  } catch {
    return;
  }
  retypeUntyped(parsed, (name) => {
    const dtype = inputs?.find((i) => i.name === name)?.dtype;
    return dtype !== undefined && isDType(dtype) ? dtype : undefined;
  });
}

/** Sends each untyped numeric input in the dtype `dtypeOf` gives it (none, or not numeric: as typed from the JSON). */
function retypeUntyped(parsed: Parsed, dtypeOf: (name: string) => DType | undefined): void {
  for (const [name, numbers] of parsed.untyped) {
    const dtype = dtypeOf(name);
    if (dtype === undefined || !isNumericDType(dtype)) continue;
    parsed.inputs[name] = toInputTensor({ dtype, shape: [...numbers.shape], data: [...numbers.values] }, `input '${name}'`);
  }
}

/** Plain JSON numbers given without a dtype, kept so they can be sent in the method's declared dtype. */
interface UntypedNumbers {
  readonly shape: readonly number[];
  readonly values: readonly number[];
}

/**
 * `name=@file.npy`, `name=@file`, `name=<json>` or `name:dtype=<json>`. The third element is
 * set for JSON numbers without a dtype (sent as int32 or float32 unless the method declares one).
 */
function parseInput(spec: string): [string, Tensor, UntypedNumbers?] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new UsageError(`--input ${JSON.stringify(spec)} is not NAME=VALUE`);
  let name = spec.slice(0, eq);
  const text = spec.slice(eq + 1);
  let dtype: DType | undefined;
  const colon = name.indexOf(':');
  if (colon >= 0) {
    const d = name.slice(colon + 1);
    if (!isDType(d)) throw new UsageError(`input '${name}': unknown dtype '${d}'`);
    dtype = d;
    name = name.slice(0, colon);
  }
  if (name.length === 0) throw new UsageError(`--input ${JSON.stringify(spec)} has no name`);
  const where = `input '${name}'`;
  if (text.startsWith('@')) {
    const file = text.slice(1);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new UsageError(`${where}: cannot read ${file}: ${(err as Error).message}`);
    }
    if (file.toLowerCase().endsWith('.npy')) return [name, readNpy(bytes, `${where} (${file})`)];
    return [name, { dtype: dtype === 'string' ? 'string' : 'bytes', shape: [], data: [bytes] }];
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const reason = (err as Error).message;
    throw new UsageError(`${where}: ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text)} is not JSON: ${reason} (quote strings: x='"text"')`);
  }
  const tensor = jsonTensor(json, text, dtype, where);
  const untyped = dtype === undefined && (tensor.dtype === 'int32' || tensor.dtype === 'float32') && !(typeof json === 'object' && json !== null && !Array.isArray(json));
  return untyped ? [name, tensor, { shape: tensor.shape, values: Array.from(tensor.data as ArrayLike<number>) }] : [name, tensor];
}

function jsonTensor(json: unknown, text: string, dtype: DType | undefined, where: string): Tensor {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) return toInputTensor(json, where);
  const shape: number[] = [];
  for (let v: unknown = json; Array.isArray(v); v = v[0]) shape.push(v.length);
  const leaves: unknown[] = [];
  const walk = (v: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (Array.isArray(v)) throw new UsageError(`${where}: the nested lists are ragged`);
      leaves.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) throw new UsageError(`${where}: the nested lists are ragged`);
    for (const x of v) walk(x, dim + 1);
  };
  walk(json, 0);
  const kinds = new Set(leaves.map((v) => typeof v));
  if (kinds.size > 1) throw new UsageError(`${where}: mixes ${[...kinds].join(' and ')} values`);
  const kind = kinds.values().next().value ?? 'number';
  if (kind === 'string') {
    if (dtype !== undefined && isNumericDType(dtype)) throw new UsageError(`${where}: strings cannot be ${dtype}`);
    return toInputTensor({ dtype: dtype ?? 'string', shape, data: leaves as string[] }, where);
  }
  if (kind === 'boolean') return toInputTensor({ dtype: dtype ?? 'bool', shape, data: leaves as boolean[] }, where);
  if (kind !== 'number') throw new UsageError(`${where}: ${kind} values cannot be sent`);
  if (dtype !== undefined && !isNumericDType(dtype)) throw new UsageError(`${where}: numbers cannot be ${dtype}`);
  // int32 unless a number is written with a fraction or an exponent (string literals removed first)
  const floaty = /\d[.eE]|\.\d/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
  return toInputTensor({ dtype: dtype ?? (floaty ? 'float32' : 'int32'), shape, data: leaves as number[] }, where);
}
