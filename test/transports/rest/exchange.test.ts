// Exchange (transports/rest/exchange.ts) on its own: a deferred body is encoded when sent, not
// when the client already left, and an encoder that throws still answers (500), never leaving
// the client waiting. The HttpResponse is a recorder with uWS's call surface; the server tests
// cover Exchange on real uWS.
import t from 'tap';
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { Exchange } from '../../../dist/transports/rest/exchange.js';

function recorder() {
  const calls: string[] = [];
  let aborted: (() => void) | undefined;
  const res = {
    onAborted(f: () => void) {
      aborted = f;
      return res;
    },
    cork(f: () => void) {
      f();
      return res;
    },
    writeStatus(s: string) {
      calls.push(`status ${s}`);
      return res;
    },
    writeHeader(k: string, v: string) {
      calls.push(`header ${k}: ${v}`);
      return res;
    },
    end(body: string | Uint8Array) {
      calls.push(`end ${typeof body === 'string' ? body : Buffer.from(body).toString()}`);
      return res;
    },
  };
  return { res: res as unknown as HttpResponse, calls, abort: () => aborted?.() };
}

t.test('a deferred body is encoded as it is sent', async (t) => {
  const r = recorder();
  let encoded = 0;
  const ex = new Exchange(r.res, () => {}, () => false);
  ex.send(200, 'application/json', { encode: () => (encoded++, Buffer.from('{"ok":1}')) });
  t.equal(encoded, 1);
  t.same(r.calls, ['status 200 OK', 'header Content-Type: application/json', 'end {"ok":1}']);
});

t.test('a deferred body is never encoded for a client that went away', async (t) => {
  const r = recorder();
  let encoded = 0;
  const ex = new Exchange(r.res, () => {}, () => false);
  r.abort();
  ex.send(200, 'application/json', { encode: () => (encoded++, Buffer.from('{}')) });
  t.equal(encoded, 0);
  t.same(r.calls, []);
});

t.test('an encoder that throws gives a 500 with the reason, and finishes the exchange', async (t) => {
  const r = recorder();
  let finished = 0;
  const ex = new Exchange(r.res, () => finished++, () => false);
  ex.send(200, 'application/msgpack', {
    encode: () => {
      throw new Error('boom');
    },
  });
  t.equal(r.calls[0], 'status 500 Internal Server Error');
  t.equal(r.calls[1], 'header Content-Type: application/json');
  t.same(JSON.parse(r.calls[2]!.slice(4)), { error_msg: 'internal error: the reply could not be encoded: boom' });
  t.equal(finished, 1);
  t.notOk(ex.open);
});
