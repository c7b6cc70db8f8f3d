/**
 * MindSpore's REST formats as codecs (codec.ts): JSON (json-codec.ts) and our msgpack
 * alternative (msgpack-codec.ts), and which headers pick them:
 *
 *   Content-Type application/msgpack, application/x-msgpack, application/vnd.msgpack
 *     (case-insensitive, at the start of the header) → msgpack body; anything else → JSON
 *   Accept naming one of those types anywhere (q-values are not read) → msgpack reply; else JSON
 */
import { ServingError } from '../../engine/errors.js';
import type { Instance } from '../../engine/tensor.js';
import type { InstanceOutcome, MethodInput } from '../../facade/engine.js';
import { parseInstances } from '../../native/index.js';
import { type Codec, CodecSet } from './codec.js';
import { type DeferredBody, JSON_TYPE, MSGPACK_TYPE } from './exchange.js';
import { type InstancesParser, decodeJsonRequest, encodeJsonError, writeJsonReply } from './json-codec.js';
import { decodeMsgpackRequest, encodeMsgpackError, encodeMsgpackReply, unpackMsgpack } from './msgpack-codec.js';
import { ReplyWriter } from './reply-writer.js';

const MSGPACK_CONTENT_TYPE = /^application\/(?:x-|vnd\.)?msgpack\b/i;
const ACCEPT_MSGPACK = /\bapplication\/(?:x-|vnd\.)?msgpack\b/i;

/** Every JSON reply of this thread is written here, one at a time, as it is sent. */
const replyWriter = new ReplyWriter();

/** `{"instances": [...]}` JSON; bodies are read by `parse` (native/index.ts `parseInstances` by default). */
export class MindSporeJsonCodec implements Codec {
  readonly name = 'json';
  readonly contentType = JSON_TYPE;

  constructor(private readonly parse: InstancesParser = parseInstances) {}

  decode(body: Uint8Array, inputs: readonly MethodInput[]): Instance[] {
    return decodeJsonRequest(body, inputs, this.parse);
  }

  parameters(body: Uint8Array): unknown {
    // Rare (stateful models' requests): parsed again only when the bytes name it at all.
    if (!mentionsParameters(body)) return undefined;
    try {
      return topLevelParameters(JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8').replace(/^\uFEFF/, '')));
    } catch (err) {
      throw new ServingError('E_INVALID_ARGUMENT', `the body's "parameters" could not be read: ${(err as Error).message}`);
    }
  }

  encodeOutcomes(outcomes: readonly InstanceOutcome[]): DeferredBody {
    // written at send time: the buffer is shared with every other reply of this thread
    return { encode: () => writeJsonReply(outcomes, replyWriter) };
  }

  encodeError(message: string): string {
    return encodeJsonError(message);
  }
}

const PARAMETERS_KEY = Buffer.from('parameters');

function mentionsParameters(body: Uint8Array): boolean {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).indexOf(PARAMETERS_KEY) >= 0;
}

function topLevelParameters(doc: unknown): unknown {
  return typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['parameters'] : undefined;
}

/** The msgpack schema of README.md ("msgpack schema"). */
export const MSGPACK_CODEC: Codec = {
  name: 'msgpack',
  contentType: MSGPACK_TYPE,
  decode: decodeMsgpackRequest,
  parameters: (body) => (mentionsParameters(body) ? topLevelParameters(unpackMsgpack(body)) : undefined),
  encodeOutcomes: encodeMsgpackReply,
  encodeError: encodeMsgpackError,
};

const DEFAULT_JSON = new MindSporeJsonCodec();

/** MindSpore's codecs; `parse` replaces the JSON parser (the `parseInstances` server option). */
export function mindsporeCodecs(parse?: InstancesParser): CodecSet {
  const json = parse ? new MindSporeJsonCodec(parse) : DEFAULT_JSON;
  return new CodecSet([{ codec: MSGPACK_CODEC, contentType: MSGPACK_CONTENT_TYPE, accept: ACCEPT_MSGPACK }], json);
}
