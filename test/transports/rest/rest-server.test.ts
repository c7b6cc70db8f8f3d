// The listener: exact body limits, unix sockets, addresses and options, probes, and a close()
// that lets requests in flight finish.
import t from 'tap';
import http from 'node:http';
import { existsSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { ServingServer } from '../../../dist/server.js';
import { startRestfulServer, type RestServer } from '../../../dist/transports/rest/server.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture } from './fixtures/rest.js';

let env: EngineFixture;

t.before(async () => {
  env = await startEngine('server');
});
t.teardown(async () => {
  await env?.stop();
});

/** The seed body padded with trailing spaces (still valid JSON) to exactly `size` bytes. */
const seedOfSize = (size: number): Buffer => Buffer.concat([Buffer.from(SEED_BODY), Buffer.alloc(size - SEED_BODY.length, 0x20)]);

t.test('body limit: exactly the limit passes, one byte more gets 413', async (t) => {
  const limit = 4096;
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { maxBodyBytes: limit });
  t.teardown(() => rest.close());
  for (const chunked of [undefined, 1000]) {
    const how = chunked ? 'chunked' : 'Content-Length';
    for (const [size, status] of [[limit - 1, 200], [limit, 200], [limit + 1, 413]] as const) {
      const r = await request({ port: rest.port }, '/model/add:add_common', { body: seedOfSize(size), ...(chunked ? { chunked } : {}) });
      t.equal(r.status, status, `${how}, ${size} bytes`);
      if (status === 200) t.same(r.json, SEED_REPLY);
      else t.match(r.json, { error_msg: new RegExp(`more than the limit of ${limit} bytes`) });
    }
  }
});

t.test('maxMsgMbSize sets the limit in MiB', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { maxMsgMbSize: 0.001 }); // 1048 bytes
  t.teardown(() => rest.close());
  t.equal((await request({ port: rest.port }, '/model/add:add_common', { body: seedOfSize(1048) })).status, 200);
  t.equal((await request({ port: rest.port }, '/model/add:add_common', { body: seedOfSize(1049) })).status, 413);
});

t.test('a unix socket server answers the seed example and removes its socket file', async (t) => {
  const socketPath = path.join(env.fx.dir, 'rest.sock');
  const rest = await startRestfulServer(env.engine, `unix:${socketPath}`);
  t.equal(rest.address, `unix:${socketPath}`);
  t.equal(rest.port, 0);
  const r = await request({}, '/model/add:add_common', { body: SEED_BODY, socketPath });
  t.equal(r.status, 200);
  t.same(r.json, SEED_REPLY);
  await t.rejects(startRestfulServer(env.engine, `unix:${socketPath}`), { code: 'E_UNAVAILABLE', message: /another server is listening there/ });
  await rest.close();
  t.notOk(existsSync(socketPath), 'the socket file is gone after close');
});

t.test('unix socket paths: a stale socket is replaced, a regular file is refused', async (t) => {
  const stale = path.join(env.fx.dir, 'stale.sock');
  // a server that dies without cleaning up leaves its socket file behind
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`]);
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.ok(existsSync(stale), 'a stale socket file exists');
  const rest = await startRestfulServer(env.engine, `unix:${stale}`);
  t.equal((await request({}, '/healthz', { socketPath: stale })).status, 200);
  await rest.close();
  const file = path.join(env.fx.dir, 'not-a-socket');
  writeFileSync(file, 'x');
  await t.rejects(startRestfulServer(env.engine, `unix:${file}`), { code: 'E_INVALID_ARGUMENT', message: /exists and is not a socket/ });
});

t.test('addresses', async (t) => {
  for (const bad of ['nope', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', 'example.com:80', '::1:5000', '[127.0.0.1]:80', 'unix:', '1.2.3:80']) {
    await t.rejects(startRestfulServer(env.engine, bad), { code: 'E_INVALID_ARGUMENT', message: /RESTful server address .* is invalid/ }, bad);
  }
  const local = await startRestfulServer(env.engine, 'localhost:0');
  t.match(local.address, /^127\.0\.0\.1:\d+$/, 'localhost means 127.0.0.1');
  t.equal((await request({ port: local.port }, '/healthz')).status, 200);
  await t.rejects(startRestfulServer(env.engine, `127.0.0.1:${local.port}`), { code: 'E_UNAVAILABLE', message: /could not bind to 127\.0\.0\.1:\d+/ }, 'port in use');
  await local.close();
  let v6: RestServer | undefined;
  try {
    v6 = await startRestfulServer(env.engine, '[::1]:0');
  } catch {
    t.comment('no IPv6 loopback here');
  }
  if (v6) {
    t.match(v6.address, /^\[::1\]:\d+$/);
    t.equal((await request({ host: '::1', port: v6.port }, '/model/add:add_common', { body: SEED_BODY })).status, 200);
    await v6.close();
  }
});

t.test('options are checked', async (t) => {
  const cases: [object, RegExp][] = [
    [{ maxMsgMbSize: 0 }, /maxMsgMbSize must be a number in \(0, 512\]/],
    [{ maxMsgMbSize: 513 }, /maxMsgMbSize/],
    [{ maxBodyBytes: -1 }, /maxBodyBytes/],
    [{ maxHeaderBytes: 10 }, /maxHeaderBytes/],
    [{ closeTimeoutMs: -5 }, /closeTimeoutMs/],
    [{ bodyTimeoutMs: 0 }, /bodyTimeoutMs/],
    [{ sslConfig: { certificate: '/nonexistent/cert.pem', privateKey: '/nonexistent/key.pem' } }, /certificate file \/nonexistent\/cert.pem cannot be read/],
  ];
  for (const [options, message] of cases) {
    await t.rejects(startRestfulServer(env.engine, '127.0.0.1:0', options), { code: 'E_INVALID_ARGUMENT', message }, JSON.stringify(options));
  }
});

t.test('probes: /healthz always 200, /readyz follows the engine', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  t.teardown(() => rest.close());
  let r = await request({ port: rest.port }, '/healthz');
  t.equal(r.status, 200);
  t.same(r.json, { live: true });
  r = await request({ port: rest.port }, '/readyz');
  t.equal(r.status, 200);
  t.match(r.json, { ready: true, servables: [{ name: 'add', version: 1, ready: true }, { name: 'ident', version: 1, ready: true }] });

  const empty = new ServingServer();
  empty.log = () => {};
  const idle = await startRestfulServer(empty, '127.0.0.1:0');
  t.teardown(() => idle.close());
  r = await request({ port: idle.port }, '/readyz');
  t.equal(r.status, 503, 'no servable loaded: not ready');
  t.same(r.json, { ready: false, servables: [] });
  t.equal((await request({ port: idle.port }, '/healthz')).status, 200, 'but live');
  r = await request({ port: idle.port }, '/model/add:add_common', { body: SEED_BODY });
  t.equal(r.status, 404);
  t.match(r.json, { error_msg: /servable 'add' is not loaded/ });
});

t.test('two servers can serve one engine', async (t) => {
  const a = await startRestfulServer(env.engine, '127.0.0.1:0');
  const b = await startRestfulServer(env.engine, '127.0.0.1:0');
  t.not(a.port, b.port);
  for (const s of [a, b]) t.same((await request({ port: s.port }, '/model/add:add_common', { body: SEED_BODY })).json, SEED_REPLY);
  await Promise.all([a.close(), b.close()]);
});

t.test('close() lets a request in flight finish, then refuses connections', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const slow = request({ port: rest.port }, '/model/ident:slow', { body: '{"instances":{"x":41}}', agent });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  const closed = rest.close();
  t.equal(rest.close(), closed, 'close() is idempotent');
  const r = await slow;
  t.equal(r.status, 200);
  t.same(r.json, { instances: [{ y: 41 }] });
  t.equal(r.headers.connection, 'close', 'the drained response closes its connection');
  await closed;
  t.ok(Date.now() - t0 >= 1000, 'close waited for the request');
  await t.rejects(request({ port: rest.port }, '/healthz'), { code: 'ECONNREFUSED' });
});

t.test('close() cuts off requests that outlive closeTimeoutMs', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { closeTimeoutMs: 100 });
  const slow = request({ port: rest.port }, '/model/ident:slow', { body: '{"instances":{"x":1}}' });
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await rest.close();
  t.ok(Date.now() - t0 < 1000, 'close did not wait for the slow request');
  await t.rejects(slow, { code: 'ECONNRESET' });
});

t.test("close(timeoutMs) waits that long, not closeTimeoutMs (a drain passes its own timeout)", async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { closeTimeoutMs: 100 });
  const slow = request({ port: rest.port }, '/model/ident:slow', { body: '{"instances":{"x":1}}' });
  await new Promise((r) => setTimeout(r, 200));
  await rest.close(10_000);
  const r = await slow;
  t.equal(r.status, 200, 'the slow request was answered, not cut off after 100 ms');
  t.same(r.json, { instances: [{ y: 1 }] });
});

t.test('a keep-alive connection that sends during the drain gets 503 and is closed', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const get = (p: string) =>
    new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      http.get({ port: rest.port, path: p, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      }).on('error', reject);
    });
  t.equal((await get('/healthz')).status, 200);
  const slow = request({ port: rest.port }, '/model/ident:slow', { body: '{"instances":{"x":1}}' });
  await new Promise((r) => setTimeout(r, 200));
  const closed = rest.close();
  const during = await get('/healthz');
  t.equal(during.status, 503);
  t.equal(during.connection, 'close');
  t.equal((await slow).status, 200);
  await closed;
});

t.test('idle connections and headers that never finish are cut off (uWS: ~10 s)', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  t.teardown(() => rest.close());
  /** Seconds until the server closes a connection fed by `feed`; gives up (fails) after 25 s. */
  const closedAfter = (feed: (c: net.Socket) => NodeJS.Timeout | undefined): Promise<number | 'open'> =>
    new Promise((resolve) => {
      const t0 = Date.now();
      const c = net.connect(rest.port, '127.0.0.1');
      let drip: NodeJS.Timeout | undefined;
      c.on('connect', () => (drip = feed(c)));
      c.on('error', () => undefined);
      c.on('data', () => undefined); // read: a paused socket would never see the server's FIN
      const giveUp = setTimeout(() => {
        resolve('open');
        c.destroy();
      }, 25_000);
      c.on('close', () => {
        clearInterval(drip);
        clearTimeout(giveUp);
        resolve((Date.now() - t0) / 1000);
      });
    });
  const [idle, slowHeaders, keptAlive] = await Promise.all([
    closedAfter(() => undefined), // connects, sends nothing
    closedAfter((c) => {
      // slowloris: a header line every second, the header section never ends
      c.write('POST /model/add:add_common HTTP/1.1\r\nHost: x\r\n');
      let i = 0;
      return setInterval(() => c.write(`X-Slow-${i++}: v\r\n`), 1000);
    }),
    closedAfter((c) => {
      // one complete request, then the keep-alive connection goes quiet
      c.write(`POST /model/add:add_common HTTP/1.1\r\nHost: x\r\nContent-Length: ${SEED_BODY.length}\r\n\r\n${SEED_BODY}`);
      return undefined;
    }),
  ]);
  for (const [what, s] of [['a silent connection', idle], ['headers dripping one line a second', slowHeaders], ['an idle keep-alive connection', keptAlive]] as const) {
    t.ok(typeof s === 'number' && s >= 3 && s < 20, `${what} is closed by the server (after ${s} s)`);
  }
  t.equal((await request({ port: rest.port }, '/model/add:add_common', { body: SEED_BODY })).status, 200, 'still live');
});

t.test('a body that trickles in too slowly gets 408 and the connection closes', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { bodyTimeoutMs: 300 });
  t.teardown(() => rest.close());
  const t0 = Date.now();
  const out = await new Promise<string>((resolve) => {
    const c = net.connect(rest.port, '127.0.0.1');
    let text = '';
    c.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', () => resolve(text));
    c.write('POST /model/add:add_common HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"in');
    const drip = setInterval(() => c.write(' '), 50); // keeps uWS's idle timer from firing
    c.on('close', () => clearInterval(drip));
  });
  t.match(out, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  t.match(out, /did not arrive within 300 ms/);
  t.ok(Date.now() - t0 < 5000);
  t.equal((await request({ port: rest.port }, '/model/add:add_common', { body: SEED_BODY })).status, 200, 'still live');
});
