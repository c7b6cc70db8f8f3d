/**
 * `actorserve.v1.ActorServe/GetModelMetadata`: the facade's `metadata()` in the proto's shape
 * (actorserve.proto). Symbolic dims become -1, as gRPC has no mixed number/string field.
 */
import type { ServableMetadata } from '../../facade/engine.js';
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
