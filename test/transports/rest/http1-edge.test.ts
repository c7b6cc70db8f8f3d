// HTTP/1.1 as a hostile client speaks it, over raw TCP to the real server: pipelined requests,
// malformed request lines, lying Content-Lengths, headers and bodies that stall, and the
// maxConnections limit. What uWS 20.30 decides before any JavaScript runs (docs/rest.md,
// "HTTP/1.1 edge cases") is checked as it is, so that a uWS that changes it is noticed. Strict
// mode (--strict-http), which answers these as HTTP/1.1 asks, is http1-strict.test.ts.
import t, { type Test } from 'tap';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { makeCerts } from '../../helpers/certs.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture } from './fixtures/rest.js';
import { type RawOutcome, rawExchange, requestBytes } from './fixtures/raw-http.js';

const PREDICT = '/model/add:add_common';

let env: EngineFixture;
let rest: RestServer;

t.before(async () => {
  env = await startEngine('http1-edge', 'add');
  rest = await startRestfulServer(env.engine, '127.0.0.1:0', { maxMsgMbSize: 1 });
});
t.teardown(async () => {
  await rest?.close();
  await env?.stop();
});

const send = (bytes: string) => (s: net.Socket) => void s.write(bytes);
const stillLive = async (t: Test, port = rest.port): Promise<void> => {
  const r = await request({ port }, PREDICT, { body: SEED_BODY });
  t.equal(r.status, 200, 'the server still answers');
  t.same(r.json, SEED_REPLY);
};
/** Closed by the server with nothing sent back. */
const closedSilently = (t: Test, o: RawOutcome, what: string): void => {
  t.ok(o.closedByServer, `${what}: the server closes the connection`);
  t.equal(o.text, '', `${what}: without a reply`);
};

t.test('pipelined requests answered at once come back complete and in order, and the connection stays open', async (t) => {
  const o = await rawExchange(
    rest.port,
    { send: send(requestBytes('/healthz') + requestBytes('/nope') + requestBytes('/readyz') + requestBytes('/healthz', '{}')), responses: 4 },
    true,
  );
  t.notOk(o.closedByServer);
  t.same(
    o.responses.map((r) => r.status),
    [200, 404, 200, 405],
    'each request has its reply, in the order sent',
  );
  t.same(JSON.parse(o.responses[0]!.body), { live: true });
  t.match(JSON.parse(o.responses[1]!.body), { error_msg: /there is nothing at "\/nope"/ });
  t.match(JSON.parse(o.responses[2]!.body), { ready: true });
  t.match(JSON.parse(o.responses[3]!.body), { error_msg: /only answers GET/ });
  // a 405 with an unread body closes the connection (the body could not be skipped safely)
  t.equal(o.responses[3]!.headers.connection, 'close');
  o.socket.destroy();

  const kept = await rawExchange(rest.port, { send: send(requestBytes('/healthz') + requestBytes('/readyz')), responses: 2 }, true);
  const again = await new Promise<string>((resolve) => {
    kept.socket.removeAllListeners('data');
    kept.socket.on('data', (d: Buffer) => resolve(d.toString()));
    kept.socket.write(requestBytes('/healthz'));
  });
  kept.socket.destroy();
  t.match(again, /^HTTP\/1\.1 200 OK\r\n/, 'after a pipeline the connection takes another request');
});

t.test('pipelined requests answered later (model work): uWS closes the connection, with no reply and no mix-up', async (t) => {
  const pipelined = await rawExchange(rest.port, { send: send(requestBytes(PREDICT, SEED_BODY) + requestBytes(PREDICT, SEED_BODY)) });
  closedSilently(t, pipelined, 'two predictions back to back');
  const thenHealth = await rawExchange(rest.port, { send: send(requestBytes(PREDICT, SEED_BODY) + requestBytes('/healthz')) });
  closedSilently(t, thenHealth, 'a prediction, then a probe');
  // the same requests, each sent when the previous reply arrived, share the connection
  const one = await rawExchange(rest.port, { send: send(requestBytes(PREDICT, SEED_BODY)), responses: 1 }, true);
  const second = await new Promise<string>((resolve) => {
    let text = '';
    one.socket.removeAllListeners('data');
    one.socket.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.endsWith('}]}')) resolve(text);
    });
    one.socket.write(requestBytes(PREDICT, SEED_BODY));
  });
  one.socket.destroy();
  t.equal(one.responses[0]!.status, 200);
  t.match(second, /^HTTP\/1\.1 200 OK\r\n/, 'one request at a time: both answered on one connection');
  await stillLive(t);
});

t.test('malformed requests get no reply; uWS closes the connection at once or at its idle timeout (~10 s)', async (t) => {
  const cases: [string, string][] = [
    ['a request line that is not one', 'GARBAGE\r\n\r\n'],
    ['HTTP/1.0 (uWS speaks 1.1 only)', 'GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['no header at all', 'GET /healthz HTTP/1.1\r\n\r\n'],
    ['a space before the colon', 'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['a bad line and 5000 more bytes (past uWS\'s 4 KiB of buffered header)', `GARBAGE\r\n\r\n${'x'.repeat(5000)}`],
    ['no Host header', 'GET /healthz HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['both Content-Length and Transfer-Encoding', `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`],
    ['a lowercase method', 'get /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
  ];
  const outcomes = await Promise.all(cases.map(([, bytes]) => rawExchange(rest.port, { send: send(bytes) })));
  cases.forEach(([what], i) => closedSilently(t, outcomes[i]!, what));
  await stillLive(t);
});

t.test('Content-Length: over the limit gets 413 before any body byte; over 9 digits uWS closes at once', async (t) => {
  const declared = (n: string) => `POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${n}\r\n\r\n`;
  const big = await rawExchange(rest.port, { send: send(declared('999999999')) });
  t.ok(big.closedByServer, 'the connection is closed after the 413');
  t.equal(big.responses.length, 1);
  t.equal(big.responses[0]!.status, 413);
  t.equal(big.responses[0]!.headers.connection, 'close');
  t.match(JSON.parse(big.responses[0]!.body), { error_msg: /the request body is 999999999 bytes, more than the limit of 1048576 bytes/ });

  closedSilently(t, await rawExchange(rest.port, { send: send(declared('4294967296')) }), 'Content-Length: 4294967296');
  closedSilently(t, await rawExchange(rest.port, { send: send(declared('-1')) }), 'Content-Length: -1');
  await stillLive(t);
});

t.test('headers trickled a byte at a time and a body that stalls are cut off, and the server answers meanwhile', async (t) => {
  const slowServer = await startRestfulServer(env.engine, '127.0.0.1:0', { bodyTimeoutMs: 500 });
  t.teardown(() => slowServer.close());
  const trickle = (bytes: string) => (s: net.Socket) => {
    let i = 0;
    return setInterval(() => s.write(bytes[i++ % bytes.length]!), 100);
  };
  const halfBody = (s: net.Socket): void =>
    void s.write(`POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${SEED_BODY.length}\r\n\r\n${SEED_BODY.slice(0, 20)}`);
  const noBody = (s: net.Socket): void => void s.write(`POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n`);
  const slow = Promise.all([
    rawExchange(rest.port, { send: trickle(`POST ${PREDICT} HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(40)}\r\n`) }),
    rawExchange(rest.port, { send: halfBody }),
    rawExchange(rest.port, { send: noBody }),
    rawExchange(slowServer.port, { send: halfBody }),
  ]);
  // meanwhile: the event loop is not held by the slow clients
  let answered = 0;
  for (let i = 0; i < 20; i++) {
    const r = await request({ port: rest.port }, PREDICT, { body: SEED_BODY });
    if (r.status === 200) answered++;
  }
  t.equal(answered, 20, 'requests on other connections are answered while the slow ones wait');
  const [trickled, stalled, absent, timedOut] = await slow;
  closedSilently(t, trickled, 'headers a byte every 100 ms (uWS: the idle timer is not reset by partial headers)');
  closedSilently(t, stalled, 'a body that stops half-way (uWS: less than 16 KiB/s for 10 s)');
  closedSilently(t, absent, 'a body announced and never sent');
  t.ok(timedOut.closedByServer, 'bodyTimeoutMs shorter than uWS\'s idle timer: closed');
  t.equal(timedOut.responses[0]?.status, 408, 'after a 408');
  t.match(JSON.parse(timedOut.responses[0]?.body ?? '{}'), { error_msg: /did not arrive within 500 ms \(20 bytes received\)/ });
  await stillLive(t);
});

t.test('maxConnections: one connection over the limit gets 503 and is closed; a freed slot is used again', async (t) => {
  const limited = await startRestfulServer(env.engine, '127.0.0.1:0', { maxConnections: 3 });
  t.teardown(() => limited.close());
  // three keep-alive connections, each with a request answered (so the front holds them)
  const held = await Promise.all([0, 1, 2].map(() => rawExchange(limited.port, { send: send(requestBytes('/healthz')), responses: 1 }, true)));
  t.same(
    held.map((h) => h.responses[0]?.status),
    [200, 200, 200],
  );
  const refused = await rawExchange(limited.port, { send: send(requestBytes(PREDICT, SEED_BODY)) });
  t.ok(refused.closedByServer, 'the fourth is closed');
  t.equal(refused.responses[0]?.status, 503);
  t.equal(refused.responses[0]?.headers.connection, 'close');
  t.match(JSON.parse(refused.responses[0]?.body ?? '{}'), { error_msg: /has 3 connections open, its limit \(maxConnections\)/ });
  // the held connections still work
  const more = await new Promise<string>((resolve) => {
    held[0]!.socket.removeAllListeners('data');
    held[0]!.socket.on('data', (d: Buffer) => resolve(d.toString()));
    held[0]!.socket.write(requestBytes('/readyz'));
  });
  t.match(more, /^HTTP\/1\.1 200 OK\r\n/);
  held[1]!.socket.destroy();
  t.equal(await healthWhenRoom(limited.port), 200, 'a connection closed makes room for a new one');
  for (const h of held) h.socket.destroy();
  t.equal(await healthWhenRoom(limited.port), 200);
  await stillLive(t, limited.port);
});

/** GET /healthz on a new connection, tried again while the front has not yet seen a closed one go (bounded). */
async function healthWhenRoom(port: number): Promise<number | undefined> {
  let status: number | undefined;
  for (let i = 0; i < 50 && status !== 200; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    status = (await rawExchange(port, { send: send(requestBytes('/healthz')), responses: 1 })).responses[0]?.status;
  }
  return status;
}

t.test('maxConnections with TLS: 503 through mutual TLS, a plain close with uWS\'s HTTPS', async (t) => {
  const certs = makeCerts(path.join(env.fx.dir, 'certs'));
  const client = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey), servername: 'localhost' };
  const files = { certificate: certs.serverCert, privateKey: certs.serverKey };
  for (const [mode, sslConfig] of [
    ['mutual TLS', { ...files, customCa: certs.ca, verifyClient: true }],
    ['HTTPS', files],
  ] as const) {
    const server = await startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig, maxConnections: 1 });
    const first = await rawExchange(server.port, { tls: client, send: send(requestBytes(PREDICT, SEED_BODY)), responses: 1 }, true);
    t.equal(first.responses[0]?.status, 200, `${mode}: the first connection is served`);
    t.same(JSON.parse(first.responses[0]?.body ?? '{}'), SEED_REPLY);
    const second = await rawExchange(server.port, { tls: client, send: send(requestBytes('/healthz')) });
    t.ok(second.closedByServer, `${mode}: the second is closed`);
    if (mode === 'mutual TLS') t.equal(second.responses[0]?.status, 503, 'after a 503 (the front speaks HTTP)');
    else t.equal(second.text, '', 'without a reply (the front only passes TLS bytes through)');
    first.socket.destroy();
    await server.close();
  }
});

t.test('maxConnections is checked', async (t) => {
  await t.rejects(startRestfulServer(env.engine, '127.0.0.1:0', { maxConnections: 0 }), /maxConnections/);
  await t.rejects(startRestfulServer(env.engine, '127.0.0.1:0', { maxConnections: 1.5 }), /maxConnections/);
  await t.rejects(startRestfulServer(env.engine, '127.0.0.1:0', { maxConnections: 5, reusePort: true }), /reusePort cannot be combined with maxConnections/);
});
