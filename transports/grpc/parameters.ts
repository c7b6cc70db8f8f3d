/**
 * Request parameters on the gRPC wire (actorserve.v1 `Parameter`: bool, int64, double or
 * string), both ways: the server reads them for the engine, the client writes them.
 */
import { ServingError } from '../../engine/errors.js';
import type { WireParameter } from './proto.js';

/** Request-level parameters as the engine takes them (`InferOptions.parameters`). */
export type ParameterValues = Readonly<Record<string, string | number | boolean>>;

/** The request's parameters as the engine takes them; a parameter with no value set is refused. */
export function wireParameters(params: Record<string, WireParameter> | undefined): ParameterValues | undefined {
  const names = Object.keys(params ?? {});
  if (names.length === 0) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const name of names) {
    const p = params![name]!;
    const v = p.value === undefined ? undefined : p[p.value];
    if (v === undefined) throw new ServingError('E_INVALID_ARGUMENT', `parameter ${JSON.stringify(name)} has no value set`);
    out[name] = v;
  }
  return out;
}

/** A parameter value on the wire: integers as int64, other numbers as double. */
export function toWireParameter(value: string | number | boolean): WireParameter {
  if (typeof value === 'string') return { string_param: value };
  if (typeof value === 'boolean') return { bool_param: value };
  return Number.isSafeInteger(value) ? { int64_param: value } : { double_param: value };
}
