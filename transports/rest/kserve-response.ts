/**
 * KServe v2 inference responses over HTTP: JSON, or JSON + binary tensor data.
 *
 *   JSON     200 application/json {"model_name", "model_version", "id"?, "parameters"?,
 *            "outputs": [{"name", "datatype", "shape", "data"}]}; `data` is flat (row-major);
 *            BOOL as true/false, INT64/UINT64 exactly, FP16 as numbers, BYTES as strings
 *            (an element that is not UTF-8 is a 500 naming binary_data as the way to get it)
 *   binary   when any output is binary: 200 application/octet-stream with header
 *            Inference-Header-Content-Length; the JSON (binary outputs carry
 *            "parameters": {"binary_data_size": n} and no "data") then each binary output's
 *            bytes in the order of "outputs" (transports/kserve/raw.ts layout)
 *
 * The bodies are written into the thread's shared ReplyWriter when sent (exchange.ts
 * DeferredBody); what can fail (UTF-8 of BYTES) is checked before.
 */
import { ServingError, toServingError } from '../../engine/errors.js';
import type { NumericArray } from '../../engine/dtypes.js';
import type { Tensor } from '../../engine/tensor.js';
import type { V2InferResponse, V2OutputTensor } from '../kserve/infer.js';
import { rawByteLength, tensorToRaw } from '../kserve/raw.js';
import type { DeferredBody, Reply } from './exchange.js';
import { JSON_TYPE } from './exchange.js';
import { tensorJson } from './json-codec.js';
import { writeFloat16Json } from './json-writer.js';
import { ReplyWriter } from './reply-writer.js';

export const BINARY_TYPE = 'application/octet-stream';
export const HEADER_LENGTH = 'Inference-Header-Content-Length';

/** Every v2 reply of this thread is written here, one at a time, as it is sent. */
const writer = new ReplyWriter();
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `{"error": "..."}`: every v2 failure's body. */
export function v2ErrorJson(message: string): string {
  return `{"error":${JSON.stringify(message)}}`;
}

/** A failure as a v2 reply: the ServingError's HTTP status and `{"error"}`. */
export function v2ErrorReply(err: unknown): Reply {
  const e = toServingError(err);
  return { status: e.httpStatus, contentType: JSON_TYPE, body: v2ErrorJson(e.message) };
}

/** The reply for a response; `binary(name)` says which outputs go binary. */
export function v2InferReply(response: V2InferResponse, binary: (name: string) => boolean): Reply {
  const head = headText(response);
  const flags = response.outputs.map((o) => binary(o.name));
  // Text that can fail, or that a native writer cannot put straight into the buffer, is made now.
  const texts = response.outputs.map((o, i) => (flags[i] || directJson(o.tensor) ? undefined : flatJsonText(o.tensor, o.name)));
  if (!flags.includes(true)) {
    return { status: 200, contentType: JSON_TYPE, body: jsonBody(head, response.outputs, texts) };
  }
  const sizes = response.outputs.map((o, i) => (flags[i] ? rawByteLength(o.tensor) : 0));
  const parts = response.outputs.map((o, i) => {
    const meta = outputHead(o);
    return flags[i] ? `${meta},"parameters":{"binary_data_size":${sizes[i]}}}` : `${meta},"data":${texts[i] ?? flatJsonText(o.tensor, o.name)}}`;
  });
  const json = Buffer.from(`${head}${parts.join(',')}]}`, 'utf8');
  const body: DeferredBody = {
    encode: () => {
      writer.reset().raw(json);
      response.outputs.forEach((o, i) => {
        if (flags[i]) writer.raw(tensorToRaw(o.tensor));
      });
      return writer.bytes();
    },
  };
  return { status: 200, contentType: BINARY_TYPE, body, headers: { [HEADER_LENGTH]: String(json.byteLength) } };
}

/** Everything before the first output object: `{"model_name":...,"outputs":[`. */
function headText(r: V2InferResponse): string {
  let s = `{"model_name":${JSON.stringify(r.model_name)},"model_version":${JSON.stringify(r.model_version)}`;
  if (r.id !== undefined) s += `,"id":${JSON.stringify(r.id)}`;
  if (r.parameters !== undefined) s += `,"parameters":${JSON.stringify(r.parameters)}`;
  return `${s},"outputs":[`;
}

function outputHead(o: V2OutputTensor): string {
  return `{"name":${JSON.stringify(o.name)},"datatype":"${o.datatype}","shape":[${o.shape.join(',')}]`;
}

function jsonBody(head: string, outputs: readonly V2OutputTensor[], texts: readonly (string | undefined)[]): DeferredBody {
  return {
    encode: () => {
      writer.reset().text(head);
      outputs.forEach((o, i) => {
        writer.text(`${i > 0 ? ',' : ''}${outputHead(o)},"data":`);
        const text = texts[i];
        const t = o.tensor;
        if (text !== undefined) writer.text(text);
        else if (!writer.typed(t.data as NumericArray, [elements(t)], t.dtype === 'bool')) writer.ascii(flatJsonText(t, o.name));
        writer.ascii('}');
      });
      writer.ascii(']}');
      return writer.bytes();
    },
  };
}

/** Whether the native writers put this tensor's numbers straight into the reply buffer. */
function directJson(t: Tensor): boolean {
  return t.dtype !== 'float16' && t.dtype !== 'string' && t.dtype !== 'bytes';
}

function elements(t: Tensor): number {
  return (t.data as ArrayLike<unknown>).length;
}

/** A tensor's elements as one flat JSON list. */
function flatJsonText(t: Tensor, name: string): string {
  const flat = [elements(t)];
  switch (t.dtype) {
    case 'float16':
      return writeFloat16Json(t.data, flat);
    case 'string':
    case 'bytes':
      return `[${t.data.map((b, i) => stringJson(b, i, name)).join(',')}]`;
    default:
      return tensorJson({ ...t, shape: flat }, name);
  }
}

function stringJson(b: Uint8Array, i: number, name: string): string {
  try {
    return JSON.stringify(utf8.decode(b));
  } catch {
    throw new ServingError(
      'E_INTERNAL',
      `output '${name}' element ${i} is not valid UTF-8, which a JSON string cannot carry; ask for it as binary data ("outputs": [{"name": "${name}", "parameters": {"binary_data": true}}])`,
    );
  }
}
