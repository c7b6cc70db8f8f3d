/**
 * How one model graph (a model, or one subgraph of it) batches: its batch size, which inputs
 * carry the batch dim, how an instance is checked against the model, how instances are
 * concatenated (and padded for fixed-batch models), and how outputs are cut back into
 * instances with the padding dropped.
 */
import { type NumericArray, isNumericDType } from '../engine/dtypes.js';
import { ServingError } from '../engine/errors.js';
import type { ModelDeclaration } from '../engine/register.js';
import { type Tensor, elementCount } from '../engine/tensor.js';
import type { BatchInput, BatchOutput } from './device.js';
import type { GraphInfo, ValueInfo } from './protocol.js';

interface InputPlan {
  readonly info: ValueInfo;
  /** Carries the batch dim (else the first instance's value feeds the whole batch). */
  readonly batched: boolean;
  /** Dims of one instance's value (without the batch dim); undefined entries are dynamic. */
  readonly instanceDims: readonly (number | undefined)[] | undefined;
  /** Elements per instance when every instance dim is static. */
  readonly staticCount: number | undefined;
}

export class BatchPlan {
  /** How messages name the model: `Model 'add.onnx'`. */
  readonly tag: string;
  /** The metrics' `model` label: the declared key, `:<subgraph>` added for a model of several files. */
  readonly metricLabel: string;
  /** Most instances in one batch. */
  readonly batchSize: number;
  /** The model's batch dim is a fixed number: short batches are padded. */
  readonly padded: boolean;
  readonly maxQueueDelayMs: number;
  /** A stateful model (its state inputs and outputs are not in `graph`: the device actor feeds them). */
  readonly stateful: boolean;
  readonly inputCount: number;
  readonly outputCount: number;
  private readonly inputs: readonly InputPlan[];
  private readonly hasDynamicInputs: boolean;
  private readonly withBatchDim: boolean;

  constructor(decl: ModelDeclaration, subgraph: number, graph: GraphInfo) {
    this.tag = `Model '${decl.key}'${decl.files.length > 1 ? ` subgraph ${subgraph}` : ''}`;
    this.metricLabel = decl.files.length > 1 ? `${decl.key}:${subgraph}` : decl.key;
    this.withBatchDim = decl.withBatchDim;
    this.maxQueueDelayMs = decl.maxQueueDelayMs;
    this.stateful = decl.sequence !== undefined;
    this.inputCount = graph.inputs.length;
    this.outputCount = graph.outputs.length;
    const fail = (message: string): never => {
      throw new ServingError('E_LOAD_FAILED', `${this.tag}: ${message}`);
    };
    for (const i of decl.withoutBatchDimInputs) {
      if (i >= graph.inputs.length) fail(`withoutBatchDimInputs names input ${i}, but the model has ${graph.inputs.length} inputs`);
    }
    let fixed: number | undefined;
    let dynamic = false;
    const noteBatchDim = (v: ValueInfo, kind: string): void => {
      const d = v.dims[0];
      if (v.dims.length === 0) fail(`${kind} '${v.name}' has no dims, so it cannot carry a batch dim (declare withBatchDim: false?)`);
      if (typeof d === 'number') {
        if (fixed !== undefined && fixed !== d) fail(`${kind} '${v.name}' has batch dim ${d}, another value has ${fixed}`);
        if (d < 1) fail(`${kind} '${v.name}' has batch dim ${d}`);
        fixed = d;
      } else dynamic = true;
    };
    this.inputs = graph.inputs.map((info, i) => {
      const batched = decl.withBatchDim && !decl.withoutBatchDimInputs.includes(i);
      if (batched) noteBatchDim(info, 'input');
      const dims = batched ? info.dims.slice(1) : info.dims;
      const instanceDims = dims.map((d) => (typeof d === 'number' ? d : undefined));
      const staticCount = instanceDims.every((d) => d !== undefined) ? (instanceDims).reduce((a, b) => a * b, 1) : undefined;
      return { info, batched, instanceDims, staticCount };
    });
    if (decl.withBatchDim) for (const o of graph.outputs) noteBatchDim(o, 'output');
    if (fixed !== undefined && dynamic) fail('mixes a fixed batch dim with a dynamic one');
    this.padded = fixed !== undefined;
    this.batchSize = decl.withBatchDim ? (fixed ?? decl.maxBatchSize) : 1;
    this.hasDynamicInputs = this.inputs.some((p) => p.staticCount === undefined);
  }

  /**
   * Throws a per-instance ServingError when `inputs` cannot feed the model. `labels` name
   * where each input came from (e.g. "method input 'x2'") for the message.
   */
  check(inputs: readonly Tensor[], labels?: readonly (string | undefined)[]): void {
    if (inputs.length !== this.inputCount) {
      throw new ServingError('E_INVALID_ARGUMENT', `${this.tag} takes ${this.inputCount} inputs, got ${inputs.length}`);
    }
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i]!;
      const plan = this.inputs[i]!;
      const from = labels?.[i] ? `${labels[i]}: ` : '';
      const expected = plan.info.dtype;
      const compatible = t.dtype === expected || (expected === 'string' && t.dtype === 'bytes');
      if (!compatible) {
        throw new ServingError(
          'E_INVALID_DTYPE',
          `${from}${this.tag} input ${i} ('${plan.info.name}') takes ${expected}, got ${t.dtype}`,
        );
      }
      const count = t.data.length;
      if (plan.staticCount !== undefined && count !== plan.staticCount) {
        throw new ServingError(
          'E_INVALID_SHAPE',
          `${from}${this.tag} input ${i} ('${plan.info.name}') takes ${plan.staticCount} elements per instance ` +
            `(shape [${plan.instanceDims!.join(', ')}]), got ${count} (shape [${t.shape.join(', ')}])`,
        );
      }
      if (plan.staticCount === undefined && plan.instanceDims && plan.instanceDims.length !== t.shape.length) {
        throw new ServingError(
          'E_INVALID_SHAPE',
          `${from}${this.tag} input ${i} ('${plan.info.name}') takes rank ${plan.instanceDims.length} per instance, got shape [${t.shape.join(', ')}]`,
        );
      }
      if (plan.staticCount === undefined && plan.instanceDims) {
        plan.instanceDims.forEach((d, k) => {
          if (d !== undefined && t.shape[k] !== d) {
            throw new ServingError(
              'E_INVALID_SHAPE',
              `${from}${this.tag} input ${i} ('${plan.info.name}') needs dim ${k} = ${d} per instance, got shape [${t.shape.join(', ')}]`,
            );
          }
        });
      }
    }
  }

  /**
   * Instances whose signatures differ cannot share a batch (dynamic dims differ). Static
   * models return '' for all.
   */
  signature(inputs: readonly Tensor[]): string {
    if (!this.hasDynamicInputs) return '';
    return inputs.map((t, i) => (this.inputs[i]!.staticCount === undefined ? t.shape.join('x') : '')).join('|');
  }

  /** Concatenates instances (already checked) into batch inputs; pads fixed-batch models. */
  assemble(instances: readonly (readonly Tensor[])[]): BatchInput[] {
    const n = instances.length;
    const rows = this.padded ? this.batchSize : n;
    return this.inputs.map((plan, i) => {
      const first = instances[0]![i]!;
      const instanceDims = plan.staticCount !== undefined ? (plan.instanceDims as number[]) : first.shape;
      if (!plan.batched) return this.single(first, instanceDims);
      const dims = [rows, ...instanceDims];
      if (!isNumericDType(first.dtype)) {
        const strings: Uint8Array[] = [];
        for (let r = 0; r < rows; r++) strings.push(...(instances[r < n ? r : 0]![i]!.data as readonly Uint8Array[]));
        return { dtype: first.dtype, dims, strings };
      }
      const parts: NumericArray[] = [];
      for (let r = 0; r < rows; r++) parts.push(instances[r < n ? r : 0]![i]!.data as NumericArray);
      return { dtype: first.dtype, dims, parts };
    });
  }

  private single(t: Tensor, dims: readonly number[]): BatchInput {
    if (!isNumericDType(t.dtype)) return { dtype: t.dtype, dims, strings: t.data as readonly Uint8Array[] };
    return { dtype: t.dtype, dims, parts: [t.data as NumericArray] };
  }

  /** Cuts batch outputs into `n` instances' outputs (copies out of the slot buffer). */
  split(outputs: readonly BatchOutput[], n: number): Tensor[][] {
    const rows = this.padded ? this.batchSize : n;
    const result: Tensor[][] = Array.from({ length: n }, () => []);
    outputs.forEach((out, o) => {
      if (!this.withBatchDim) {
        for (let r = 0; r < n; r++) result[r]!.push(copyWhole(out));
        return;
      }
      if (out.dims[0] !== rows) {
        throw new ServingError('E_MODEL_FAILED', `${this.tag}: output ${o} has leading dim ${out.dims[0]}, expected the batch size ${rows}`);
      }
      const shape = out.dims.slice(1);
      const per = elementCount(shape);
      for (let r = 0; r < n; r++) {
        if ('strings' in out) {
          result[r]!.push({ dtype: 'string', shape, data: out.strings.slice(r * per, (r + 1) * per) });
        } else {
          result[r]!.push({ dtype: out.dtype, shape, data: out.data.slice(r * per, (r + 1) * per) } as Tensor);
        }
      }
    });
    return result;
  }
}

function copyWhole(out: BatchOutput): Tensor {
  if ('strings' in out) return { dtype: 'string', shape: [...out.dims], data: [...out.strings] };
  return { dtype: out.dtype, shape: [...out.dims], data: out.data.slice() } as Tensor;
}
