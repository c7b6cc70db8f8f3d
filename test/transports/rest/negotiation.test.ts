// Content negotiation for MindSpore's routes (mindspore-codecs.ts, codec.ts CodecSet): which
// codec each Content-Type and Accept picks, and what the two codecs produce.
import t from 'tap';
import { Unpackr } from 'msgpackr';
import { ServingError } from '../../../dist/engine/errors.js';
import { CodecSet, errorReply } from '../../../dist/transports/rest/codec.js';
import { MSGPACK_CODEC, MindSporeJsonCodec, mindsporeCodecs } from '../../../dist/transports/rest/mindspore-codecs.js';
import { outcomeReply } from '../../../dist/transports/rest/predict.js';

const codecs = mindsporeCodecs();

t.test('Content-Type picks the decoder', async (t) => {
  const cases: [contentType: string, codec: string][] = [
    ['', 'json'],
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['application/msgpack', 'msgpack'],
    ['application/x-msgpack', 'msgpack'],
    ['application/vnd.msgpack', 'msgpack'],
    ['APPLICATION/MSGPACK', 'msgpack'],
    ['application/msgpack; charset=binary', 'msgpack'],
    ['application/msgpackx', 'json'],
    ['x-application/msgpack', 'json'],
    [' application/msgpack', 'json'],
    // kept as they are (README: "anything else → JSON"): a type we do not read is parsed as JSON
    ['text/plain', 'json'],
    ['application/octet-stream', 'json'],
    ['multipart/form-data; boundary=x', 'json'],
  ];
  for (const [contentType, codec] of cases) t.equal(codecs.decoderFor(contentType).name, codec, JSON.stringify(contentType));
});

t.test('Accept picks the encoder', async (t) => {
  const cases: [accept: string, codec: string][] = [
    ['', 'json'],
    ['*/*', 'json'],
    ['application/json', 'json'],
    ['application/*', 'json'],
    ['application/msgpack', 'msgpack'],
    ['application/x-msgpack', 'msgpack'],
    ['Application/Vnd.Msgpack', 'msgpack'],
    ['application/json, application/msgpack', 'msgpack'],
    ['text/html, application/x-msgpack;q=0.9', 'msgpack'],
    // kept as they are: q-values are not read, so a refused msgpack still picks msgpack
    ['application/msgpack;q=0, application/json', 'msgpack'],
  ];
  for (const [accept, codec] of cases) t.equal(codecs.encoderFor(accept).name, codec, JSON.stringify(accept));
});

t.test('the JSON codec writes its replies when they are sent, not before', async (t) => {
  const json = new MindSporeJsonCodec();
  t.equal(json.contentType, 'application/json');
  const one = json.encodeOutcomes([{ y: { dtype: 'float32', shape: [1], data: Float32Array.of(1.5) } }]);
  const two = json.encodeOutcomes([{ y: { dtype: 'int32', shape: [], data: Int32Array.of(7) } }]);
  t.type(one, 'object');
  t.type((one as { encode: unknown }).encode, 'function', 'a DeferredBody');
  // encoded in the opposite order: each is written at its own encode(), into the shared buffer
  const text = (body: unknown): string => Buffer.from((body as { encode(): Uint8Array }).encode()).toString();
  t.equal(text(two), '{"instances":[{"y":7}]}');
  t.equal(text(one), '{"instances":[{"y":[1.5]}]}');
  t.equal(json.encodeError('no'), '{"error_msg":"no"}');
});

t.test('the msgpack codec', async (t) => {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  t.equal(MSGPACK_CODEC.contentType, 'application/msgpack');
  t.same(unpackr.unpack(MSGPACK_CODEC.encodeError('no') as Uint8Array), { error_msg: 'no' });
  const reply: unknown = unpackr.unpack(MSGPACK_CODEC.encodeOutcomes([{ y: { dtype: 'int32', shape: [], data: Int32Array.of(7) } }]) as Uint8Array);
  t.match(reply, { instances: [{ y: { dtype: 'int32', shape: [] } }] });
});

t.test('a codec set with no alternatives always uses its fallback; the first matching choice wins', async (t) => {
  t.equal(new CodecSet([], MSGPACK_CODEC).decoderFor('application/json').name, 'msgpack');
  const json = new MindSporeJsonCodec();
  const both = new CodecSet(
    [
      { codec: json, contentType: /json/, accept: /json/ },
      { codec: MSGPACK_CODEC, contentType: /json|msgpack/, accept: /json|msgpack/ },
    ],
    MSGPACK_CODEC,
  );
  t.equal(both.decoderFor('application/json').name, 'json');
  t.equal(both.encoderFor('application/msgpack, application/json').name, 'json');
});

t.test('replies follow the encoder: MindSpore status rules on either codec', async (t) => {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const failed = new ServingError('E_INVALID_ARGUMENT', 'bad x');
  for (const encoder of [new MindSporeJsonCodec(), MSGPACK_CODEC]) {
    const read = (body: unknown): unknown => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : (body as { encode(): Uint8Array }).encode();
      return encoder === MSGPACK_CODEC ? unpackr.unpack(bytes) : JSON.parse(Buffer.from(bytes).toString());
    };
    const all = outcomeReply([failed, failed], encoder);
    t.match({ status: all.status, contentType: all.contentType }, { status: 400, contentType: encoder.contentType }, `${encoder.contentType}: all failed alike`);
    t.same(read(all.body), { error_msg: 'bad x' });
    const err = errorReply(503, 'busy', encoder);
    t.same([err.status, err.contentType, read(err.body)], [503, encoder.contentType, { error_msg: 'busy' }]);
  }
});
