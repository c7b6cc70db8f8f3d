// A small, deterministic ONNX graph builder over the `onnx-proto` protobuf bindings.
//
// It covers what our example/test models need: typed graph inputs/outputs (fixed or symbolic
// dims), nodes with int/ints/float/floats/string/tensor attributes, initializers from typed
// arrays, and serialization to bytes that onnxruntime-node loads directly.
//
// Determinism: nothing here depends on time, randomness or host state, so the same calls give
// byte-identical output. Tensor payloads are always written little-endian (as ONNX requires),
// whatever the host byte order.

import { endianness } from 'node:os';
// `onnx-proto` is a CommonJS bundle whose `module.exports` is a protobufjs root object; Node's
// CJS named-export detection cannot see `onnx` on it, so `import { onnx } from 'onnx-proto'`
// type-checks but fails at runtime under ESM. Take the default export (= module.exports) instead.
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNs } from 'onnx-proto';
import type { TypedArrayByDType } from '../engine/dtypes.js';

export const onnx = onnxProto.onnx;

/** ONNX IR version written into every model (IR 8 = ONNX 1.10, understood by every ORT we use). */
export const IR_VERSION = 8;
/** Default-domain opset imported by every model. */
export const OPSET_VERSION = 17;

/** Element types we support, named like onnxruntime-node's tensor types. */
export type OnnxDType =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'string';

/** All supported dtypes, in a fixed order (handy for tests and loops). */
export const ONNX_DTYPES: readonly OnnxDType[] = [
  'bool',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'float16',
  'float32',
  'float64',
  'string',
];

/** dtype name -> onnx.TensorProto.DataType enum value. */
export const ONNX_DATA_TYPE: Readonly<Record<OnnxDType, OnnxNs.TensorProto.DataType>> = {
  bool: onnx.TensorProto.DataType.BOOL,
  int8: onnx.TensorProto.DataType.INT8,
  int16: onnx.TensorProto.DataType.INT16,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  uint8: onnx.TensorProto.DataType.UINT8,
  uint16: onnx.TensorProto.DataType.UINT16,
  uint32: onnx.TensorProto.DataType.UINT32,
  uint64: onnx.TensorProto.DataType.UINT64,
  float16: onnx.TensorProto.DataType.FLOAT16,
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  string: onnx.TensorProto.DataType.STRING,
};

/** Bytes per element in raw_data (string has no fixed size). */
const ELEMENT_SIZE: Readonly<Record<Exclude<OnnxDType, 'string'>, number>> = {
  bool: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  float16: 2,
  float32: 4,
  float64: 8,
};

/**
 * Typed-array kind accepted for each dtype's initializer data. bool is one byte per element
 * (0/1) and float16 is the raw IEEE half bits, matching onnxruntime-node's tensor conventions.
 */
export type OnnxDTypeArrayMap = TypedArrayByDType & { string: readonly string[] };

/** One dimension: a fixed size, or a symbolic name (e.g. 'N') for a dynamic dim. */
export type Dim = number | string;

/** Attribute values, tagged so ints and floats cannot be confused. Build them with `attr.*`. */
export type OnnxAttribute =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'tensor'; readonly value: OnnxNs.ITensorProto };

/** Attribute constructors: `attr.int(0)`, `attr.floats([1, 2])`, `attr.tensor(makeTensor(...))`. */
export const attr = {
  int: (value: number): OnnxAttribute => ({ kind: 'int', value }),
  ints: (value: readonly number[]): OnnxAttribute => ({ kind: 'ints', value }),
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  floats: (value: readonly number[]): OnnxAttribute => ({ kind: 'floats', value }),
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
  tensor: (value: OnnxNs.ITensorProto): OnnxAttribute => ({ kind: 'tensor', value }),
} as const;

const HOST_IS_LE = endianness() === 'LE';
const utf8 = new TextEncoder();

function checkDims(dims: readonly number[]): number {
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid tensor dim ${d}`);
    count *= d;
  }
  return count;
}

/** Copies a typed array's bytes as little-endian raw_data (byte-swapping on big-endian hosts). */
function littleEndianBytes(view: ArrayBufferView, elementSize: number): Uint8Array {
  const src = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const out = new Uint8Array(src); // always copy: the proto must not alias caller memory
  if (!HOST_IS_LE && elementSize > 1) {
    for (let off = 0; off < out.length; off += elementSize) out.subarray(off, off + elementSize).reverse();
  }
  return out;
}

/**
 * Builds a TensorProto (for initializers or tensor attributes). Numeric data goes to raw_data,
 * strings to string_data (UTF-8).
 */
export function makeTensor<T extends OnnxDType>(
  name: string,
  dtype: T,
  dims: readonly number[],
  data: OnnxDTypeArrayMap[T],
): OnnxNs.ITensorProto {
  const count = checkDims(dims);
  const tensor: OnnxNs.ITensorProto = { name, dataType: ONNX_DATA_TYPE[dtype], dims: [...dims] };
  const kind: OnnxDType = dtype;
  if (kind === 'string') {
    const strings = data as readonly string[];
    if (strings.length !== count) throw new RangeError(`${name}: ${strings.length} strings for ${count} elements`);
    tensor.stringData = strings.map((s) => utf8.encode(s));
  } else {
    const view = data as ArrayBufferView;
    const size = ELEMENT_SIZE[kind];
    if (view.byteLength !== count * size) {
      throw new RangeError(`${name}: ${view.byteLength} bytes of ${dtype} data for ${count} elements`);
    }
    tensor.rawData = littleEndianBytes(view, size);
  }
  return tensor;
}

function toAttributeProto(name: string, a: OnnxAttribute): OnnxNs.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'ints':
      return { name, type: T.INTS, ints: [...a.value] };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: T.STRING, s: utf8.encode(a.value) };
    case 'tensor':
      return { name, type: T.TENSOR, t: a.value };
  }
}

function valueInfo(name: string, dtype: OnnxDType, shape: readonly Dim[]): OnnxNs.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DATA_TYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Options for a node; `name` defaults to `<opType>_<index>`. */
export interface NodeOptions {
  readonly name?: string;
  readonly attributes?: Readonly<Record<string, OnnxAttribute>>;
}

/** Accumulates a single ONNX graph, then serializes it as a ModelProto. */
export class OnnxGraphBuilder {
  private readonly inputs: OnnxNs.IValueInfoProto[] = [];
  private readonly outputs: OnnxNs.IValueInfoProto[] = [];
  private readonly nodes: OnnxNs.INodeProto[] = [];
  private readonly initializers: OnnxNs.ITensorProto[] = [];
  private opset = OPSET_VERSION;

  constructor(private readonly graphName: string) {}

  /** Overrides the default-domain opset (default 17). */
  setOpset(version: number): this {
    this.opset = version;
    return this;
  }

  addInput(name: string, dtype: OnnxDType, shape: readonly Dim[]): this {
    this.inputs.push(valueInfo(name, dtype, shape));
    return this;
  }

  addOutput(name: string, dtype: OnnxDType, shape: readonly Dim[]): this {
    this.outputs.push(valueInfo(name, dtype, shape));
    return this;
  }

  /** Adds a node; an empty-string input means "optional input omitted", as in ONNX. */
  addNode(opType: string, inputs: readonly string[], outputs: readonly string[], options: NodeOptions = {}): this {
    const attributes = Object.entries(options.attributes ?? {}).map(([k, v]) => toAttributeProto(k, v));
    this.nodes.push({
      name: options.name ?? `${opType}_${this.nodes.length}`,
      opType,
      input: [...inputs],
      output: [...outputs],
      attribute: attributes,
    });
    return this;
  }

  /** Adds a constant initializer (a named tensor usable as a node input). */
  addInitializer<T extends OnnxDType>(name: string, dtype: T, dims: readonly number[], data: OnnxDTypeArrayMap[T]): this {
    this.initializers.push(makeTensor(name, dtype, dims, data));
    return this;
  }

  /** The ModelProto message (before encoding). */
  toModel(): OnnxNs.ModelProto {
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'actorserve',
      opsetImport: [{ domain: '', version: this.opset }],
      graph: {
        name: this.graphName,
        input: this.inputs,
        output: this.outputs,
        node: this.nodes,
        initializer: this.initializers,
      },
    });
  }

  /** Serialized model bytes, loadable by `ort.InferenceSession.create(bytes)`. */
  toBytes(): Uint8Array {
    // Under Node, protobufjs returns a Buffer that may be a view into Node's shared allocation
    // pool; copy into a standalone Uint8Array so `.buffer` is exactly the model (safe to transfer).
    return new Uint8Array(onnx.ModelProto.encode(this.toModel()).finish());
  }
}

/** Re-exported: the generators and tests have always imported it from here. */
export { mulberry32 } from './prng.js';
