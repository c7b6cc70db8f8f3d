/**
 * Wire formats of inference requests and replies, and the one place that picks them from a
 * request's headers: `Content-Type` picks the decoder, `Accept` the encoder.
 *
 * A protocol module (mindspore-routes.ts) hands its route a CodecSet; the server negotiates
 * before reading the body, so that even a 413 or 408 answers in the format the client asked
 * for. MindSpore's set is in mindspore-codecs.ts: JSON (the fallback) and msgpack.
 */
import type { Instance } from '../../engine/tensor.js';
import type { InstanceOutcome, MethodInput } from '../../facade/engine.js';
import type { Body, Reply } from './exchange.js';

/** Request body → instances, checked against the method's inputs (names, declared or model dtypes). */
export interface RequestDecoder {
  /** Throws ServingError (400) on a malformed body. */
  decode(body: Uint8Array, inputs: readonly MethodInput[]): Instance[];
  /**
   * The body's top-level "parameters" (undefined when it has none): request parameters such
   * as Triton's sequence_id / sequence_start / sequence_end. Called after `decode` succeeded.
   */
  parameters?(body: Uint8Array): unknown;
}

/** Outcomes and errors → reply bodies of one content type. */
export interface ReplyEncoder {
  /** The replies' `Content-Type`. */
  readonly contentType: string;
  /**
   * The body for per-instance outcomes (a ServingError in an instance's place is its
   * `error_msg`). A body written into a reused buffer must be a DeferredBody (exchange.ts): it
   * is encoded at send time, never earlier.
   */
  encodeOutcomes(outcomes: readonly InstanceOutcome[]): Body;
  /** The body for a whole-request error. */
  encodeError(message: string): Body;
}

export interface Codec extends RequestDecoder, ReplyEncoder {
  /** Names the format in tests and logs: 'json', 'msgpack'. */
  readonly name: string;
}

/** A codec and the header values that select it. */
export interface CodecChoice {
  readonly codec: Codec;
  /** Tested against the request's `Content-Type`. */
  readonly contentType: RegExp;
  /** Tested against the request's `Accept`. */
  readonly accept: RegExp;
}

/**
 * Content negotiation: the first choice whose pattern matches the header, else the fallback.
 * An absent header is the empty string (as uWS reports it), which selects the fallback
 * unless a pattern matches ''.
 */
export class CodecSet {
  constructor(
    private readonly choices: readonly CodecChoice[],
    readonly fallback: Codec,
  ) {}

  decoderFor(contentType: string): Codec {
    for (const c of this.choices) if (c.contentType.test(contentType)) return c.codec;
    return this.fallback;
  }

  encoderFor(accept: string): Codec {
    for (const c of this.choices) if (c.accept.test(accept)) return c.codec;
    return this.fallback;
  }
}

/** A whole-request error in `encoder`'s format. */
export function errorReply(status: number, message: string, encoder: ReplyEncoder): Reply {
  return { status, contentType: encoder.contentType, body: encoder.encodeError(message) };
}
