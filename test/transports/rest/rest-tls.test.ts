// HTTPS and mutual TLS with certificates made by openssl for this run.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { startRestfulServer } from '../../../dist/transports/rest/server.js';
import { SEED_BODY, SEED_REPLY, startEngine, type EngineFixture } from './fixtures/rest.js';

// openssl is installed by .ci/run; a machine without it fails here rather than skipping.
execFileSync('openssl', ['version'], { stdio: 'ignore' });

let env: EngineFixture;
let dir: string;

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA; plus a second CA. */
function makeCerts(into: string): void {
  const run = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: into, stdio: 'ignore' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) run('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=${ca}`);
  writeFileSync(path.join(into, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  const leaf = (name: string, ca: string, ext?: string): void => {
    run('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...(ext ? ['-extfile', ext] : []));
  };
  leaf('server', 'ca', 'server.ext');
  leaf('client', 'ca');
  leaf('stranger', 'other-ca');
}

t.before(async () => {
  env = await startEngine('tls');
  dir = path.join(env.fx.dir, 'certs');
  mkdirSync(dir);
  makeCerts(dir);
});
t.teardown(async () => {
  await env?.stop();
});

const file = (name: string): string => path.join(dir, name);

function post(port: number, opts: https.RequestOptions): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/model/add:add_common', ca: readFileSync(file('ca.pem')), agent: false, ...opts },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(SEED_BODY);
  });
}

t.test('HTTPS', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig: { certificate: file('server.pem'), privateKey: file('server.key') } });
  t.teardown(() => rest.close());
  const r = await post(rest.port, {});
  t.equal(r.status, 200);
  t.same(r.json, SEED_REPLY);
  await t.rejects(post(rest.port, { ca: readFileSync(file('other-ca.pem')) }), 'a client that does not trust the server CA refuses it');
});

t.test('mutual TLS', async (t) => {
  const rest = await startRestfulServer(env.engine, '127.0.0.1:0', {
    sslConfig: { certificate: file('server.pem'), privateKey: file('server.key'), customCa: file('ca.pem'), verifyClient: true },
  });
  t.teardown(() => rest.close());
  const r = await post(rest.port, { cert: readFileSync(file('client.pem')), key: readFileSync(file('client.key')) });
  t.equal(r.status, 200, 'a client with a certificate from the CA is served');
  t.same(r.json, SEED_REPLY);
  await t.rejects(post(rest.port, {}), 'a client without a certificate is refused');
  await t.rejects(post(rest.port, { cert: readFileSync(file('stranger.pem')), key: readFileSync(file('stranger.key')) }), 'a certificate from another CA is refused');
});

t.test('TLS configuration errors', async (t) => {
  await t.rejects(
    startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig: { certificate: file('server.pem'), privateKey: file('server.key'), verifyClient: true } }),
    { code: 'E_INVALID_ARGUMENT', message: /verifyClient needs customCa/ },
  );
  await t.rejects(
    startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig: { certificate: file('server.pem'), privateKey: file('nope.key') } }),
    { code: 'E_INVALID_ARGUMENT', message: /privateKey file .*nope.key cannot be read/ },
  );
  await t.rejects(
    startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig: { certificate: file('server.ext'), privateKey: file('server.key') } }),
    { code: 'E_INVALID_ARGUMENT', message: /could not be loaded/ },
    'a file that is not a certificate',
  );
  await t.rejects(
    startRestfulServer(env.engine, '127.0.0.1:0', { sslConfig: { certificate: file('server.pem'), privateKey: file('client.key') } }),
    { code: 'E_INVALID_ARGUMENT', message: /could not be loaded/ },
    'a key that does not match the certificate',
  );
});
