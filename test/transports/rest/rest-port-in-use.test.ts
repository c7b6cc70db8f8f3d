// A TCP port another process listens on is refused (E_UNAVAILABLE naming the address), also when
// that process bound it with SO_REUSEPORT as uWS does by default; sharing is the `reusePort`
// opt-in, and then both servers take connections.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startRestfulServer } from '../../../dist/transports/rest/server.js';
import { makeCerts } from '../../helpers/certs.js';
import { ROOT } from '../../helpers/fixtures.js';
import { SEED_BODY, SEED_REPLY, request, startEngine, type EngineFixture } from './fixtures/rest.js';

let env: EngineFixture;

t.before(async () => {
  env = await startEngine('port-in-use');
});
t.teardown(async () => {
  await env?.stop();
});

/**
 * Another process holding a port as a uWS server does by default (SO_REUSEPORT): it prints the
 * port, and answers every request with 'other'.
 */
async function otherUwsServer(t: Test): Promise<number> {
  // a fixed port: Linux does not share a port the kernel picked for bind(port 0), even with SO_REUSEPORT
  const source = `
    import uWS from '@trufflesuite/uws-js-unofficial';
    import net from 'node:net';
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const port = probe.address().port;
      probe.close(() => uWS.App().any('/*', (res) => res.end('other')).listen('127.0.0.1', port, (s) => console.log(s ? 'port ' + port : 'failed')));
    });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`the other server exited ${code}`)));
  });
}

t.test('a port another uWS process holds is refused, not shared', async (t) => {
  const port = await otherUwsServer(t);
  await t.rejects(startRestfulServer(env.engine, `127.0.0.1:${port}`), {
    code: 'E_UNAVAILABLE',
    message: new RegExp(`RESTful server could not bind to 127\\.0\\.0\\.1:${port} \\(address in use`),
  });
});

t.test('reusePort: true shares the port with a server that shares it too', async (t) => {
  const port = await otherUwsServer(t);
  const rest = await startRestfulServer(env.engine, `127.0.0.1:${port}`, { reusePort: true });
  t.teardown(() => rest.close());
  t.equal(rest.port, port);
  // the kernel spreads new connections over both listeners; one of ours answers within a few tries
  let ours = 0;
  for (let i = 0; i < 64 && ours === 0; i++) {
    const r = await request({ port }, '/model/add:add_common', { body: SEED_BODY, headers: { connection: 'close' } });
    if (r.status === 200 && JSON.stringify(r.json) === JSON.stringify(SEED_REPLY)) ours++;
  }
  t.ok(ours > 0, 'this server answers on the shared port');
});

t.test('an exclusive server keeps a reusePort server off its port', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0');
  t.teardown(() => rest.close());
  await t.rejects(startRestfulServer(env.engine, `127.0.0.1:${rest.port}`, { reusePort: true }), {
    code: 'E_UNAVAILABLE',
    message: /every server on the port must set it/,
  });
});

t.test('reusePort with client certificates is refused', async (t) => {
  const certs = makeCerts(path.join(env.fx.dir, 'certs'));
  const sslConfig = { certificate: certs.serverCert, privateKey: certs.serverKey, customCa: certs.ca, verifyClient: true };
  await t.rejects(startRestfulServer(env.engine, '127.0.0.1:0', { reusePort: true, sslConfig }), {
    code: 'E_INVALID_ARGUMENT',
    message: /reusePort cannot be combined with sslConfig\.verifyClient/,
  });
});
