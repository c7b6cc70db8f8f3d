// JSON replies are written as bytes into one buffer that the next reply reuses
// (transports/rest/reply-writer.ts), at the moment each is sent. These tests show the two ways
// that could go wrong do not: a large reply that its client is slow to read arrives intact
// while later replies overwrite the buffer (uWS copies what it cannot send at once), and
// replies finishing in the same tick each carry their own values.
import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';
import { Packr } from 'msgpackr';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { request, startEngine, type EngineFixture, type PredictReply } from './fixtures/rest.js';

let env: EngineFixture;
let rest: RestServer;
const packr = new Packr({ useRecords: false });

t.before(async () => {
  env = await startEngine('reply-bytes');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

/** A msgpack body for ident:echo with x = data (float32, shape [n]); the reply is JSON. */
function echoBody(data: Float32Array): Buffer {
  return packr.pack({ instances: { x: { dtype: 'float32', shape: [data.length], data: new Uint8Array(data.buffer) } } });
}

const echo = (data: Float32Array) =>
  request({ port: rest.port }, '/model/ident:echo', { body: echoBody(data), headers: { 'content-type': 'application/msgpack' } });

function mismatches(got: unknown, want: Float32Array): number {
  if (!Array.isArray(got) || got.length !== want.length) return want.length;
  let bad = 0;
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) bad++;
  return bad;
}

/** Reads one HTTP/1.1 response with a Content-Length from a raw socket. */
async function readResponse(sock: net.Socket): Promise<{ head: string; body: Buffer }> {
  const chunks: Buffer[] = [];
  let total = 0;
  let headEnd = -1;
  let length = -1;
  sock.resume();
  for await (const chunk of sock as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    total += chunk.length;
    if (headEnd < 0) {
      const all = Buffer.concat(chunks);
      headEnd = all.indexOf('\r\n\r\n');
      if (headEnd >= 0) length = Number(/content-length: (\d+)/i.exec(all.subarray(0, headEnd).toString('latin1'))?.[1] ?? -1);
    }
    if (headEnd >= 0 && length >= 0 && total >= headEnd + 4 + length) break;
  }
  const all = Buffer.concat(chunks);
  return { head: all.subarray(0, headEnd).toString('latin1'), body: all.subarray(headEnd + 4, headEnd + 4 + length) };
}

t.test('a large reply its client does not read yet survives the replies written after it', async (t) => {
  const n = 3_000_000; // ~19 MB of JSON: more than the loopback socket buffers hold
  const big = Float32Array.from({ length: n }, (_, i) => (i % 4096) * 0.25 - 100);
  const body = echoBody(big);
  const sock = net.connect(rest.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.pause();
  sock.write(`POST /model/ident:echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/msgpack\r\nContent-Length: ${body.length}\r\n\r\n`);
  sock.write(body);
  await once(sock, 'readable'); // the reply has started: it was written, and uWS holds the rest

  // Later replies are written into the same buffer, over the first reply's bytes.
  for (let k = 0; k < 4; k++) {
    const other = new Float32Array(200_000).fill(7.75 + k);
    const r = await echo(other);
    t.equal(r.status, 200);
    t.equal(mismatches((r.json as PredictReply | undefined)?.instances?.[0]?.y, other), 0, `later reply ${k} carries its own values`);
  }

  const { head, body: replyBody } = await readResponse(sock);
  sock.destroy();
  t.match(head, /^HTTP\/1\.1 200 /);
  t.ok(replyBody.length > 15_000_000, `a large reply (${replyBody.length} bytes)`);
  const y = (JSON.parse(replyBody.toString('utf8')) as { instances: { y: unknown }[] }).instances[0]!.y;
  t.equal(mismatches(y, big), 0, 'every value of the large reply arrived intact');
});

t.test('replies that finish together each carry their own values', async (t) => {
  const inputs = Array.from({ length: 48 }, (_, k) => Float32Array.from({ length: 5000 + k }, (_, i) => k * 1000 + i * 0.5));
  const replies = await Promise.all(inputs.map((x) => echo(x)));
  replies.forEach((r, k) => {
    t.equal(r.status, 200);
    t.equal(mismatches((r.json as PredictReply | undefined)?.instances?.[0]?.y, inputs[k]!), 0, `reply ${k}`);
  });
});
