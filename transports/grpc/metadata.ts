/**
 * `actorserve.v1.ActorServe/GetModelMetadata`: the facade's `metadata()` in the proto's shape
 * (actorserve.proto). Symbolic dims become -1, as gRPC has no mixed number/string field.
 */
import type { MethodInfo, ServableMetadata } from '../../facade/engine.js';
import type { WireModelMetadataReply, WireTensorMetadata } from './proto.js';

export function encodeMetadata(m: ServableMetadata): WireModelMetadataReply {
  return {
    name: m.name,
    version: m.version,
    versions: [...m.versions],
    methods: m.methods.map((method) => ({
      name: method.name,
      inputs: method.inputs.map(
        (input): WireTensorMetadata => ({
          name: input.name,
          dtype: input.dtype ?? '',
          dims: input.dims?.map((d) => (typeof d === 'number' ? d : -1)) ?? [],
          has_dims: input.dims !== undefined,
        }),
      ),
      outputs: method.outputs.map((name): WireTensorMetadata => ({ name, dtype: '', dims: [], has_dims: false })),
    })),
  };
}

/** The client's side: the reply as the facade's ServableMetadata (dynamic dims as -1; no dtype/dims where unknown). */
export function decodeMetadata(reply: WireModelMetadataReply): ServableMetadata {
  return {
    name: reply.name ?? '',
    version: reply.version ?? 0,
    versions: reply.versions ?? [],
    methods: (reply.methods ?? []).map(
      (m): MethodInfo => ({
        name: m.name ?? '',
        inputs: (m.inputs ?? []).map((i) => ({
          name: i.name ?? '',
          ...(i.dtype ? { dtype: i.dtype } : {}),
          ...(i.has_dims ? { dims: i.dims ?? [] } : {}),
        })),
        outputs: (m.outputs ?? []).map((o) => o.name ?? ''),
      }),
    ),
  };
}
