// The serve config file: JSON and YAML, schema validation with errors that name the key.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, SERVE_CONFIG_OPTIONS, loadConfigFile, resolveServeConfig } from '../../dist/cli/config.js';
import { ROOT } from '../helpers/fixtures.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'actorserve-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

t.test('a YAML config loads, with relative paths resolved against its folder', async (t) => {
  const file = write(
    'good.yaml',
    `servableDirectory: ./servables
servables:
  - name: add
    deviceIds: [0, 1]
    decKeyFile: keys/add.key
    batching:
      tensor_add.onnx: { maxBatchSize: 32, maxQueueDelayMs: 2 }
rest: { address: "127.0.0.1:1500", ssl: { certificate: tls/cert.pem, privateKey: tls/key.pem } }
grpc: null
log: { format: json, accessLog: true }
drainTimeoutMs: 5000
`,
  );
  const c = await loadConfigFile(file);
  t.equal(c.servableDirectory, path.join(dir, 'servables'));
  t.same(c.servables![0]!.deviceIds, [0, 1]);
  t.equal(c.servables![0]!.decKeyFile, path.join(dir, 'keys/add.key'));
  t.same(c.servables![0]!.batching, { 'tensor_add.onnx': { maxBatchSize: 32, maxQueueDelayMs: 2 } });
  t.equal(c.rest!.ssl!.certificate, path.join(dir, 'tls/cert.pem'));
  t.equal(c.grpc, null, 'null disables a transport');
  t.equal(c.log!.format, 'json');
});

t.test('JSON works too', async (t) => {
  const c = await loadConfigFile(write('good.json', JSON.stringify({ servables: [{ name: 'add', version: 2 }] })));
  t.equal(c.servables![0]!.version, 2);
});

const bad: [string, string, RegExp][] = [
  ['misspelled key', 'servables:\n  - name: add\n    deviceIdz: [0]\n', /config\.servables\[0\]: unknown key 'deviceIdz' \(did you mean 'deviceIds'\?\)/],
  ['misspelled top key', 'servableDirektory: x\n', /config: unknown key 'servableDirektory' \(did you mean 'servableDirectory'\?\)/],
  ['wrong type', 'drainTimeoutMs: soon\n', /config\.drainTimeoutMs: must be a number >= 0, got 'soon'/],
  ['negative device id', 'servables: [{ name: add, deviceIds: [-1] }]\n', /config\.servables\[0\]\.deviceIds: must be integers >= 0, got \[-1\]/],
  ['missing name', 'servables: [{ version: 1 }]\n', /config\.servables\[0\]: missing required key 'name'/],
  ['bad enum', 'log: { format: xml }\n', /config\.log\.format: 'xml' is not supported; use 'text' or 'json'/],
  ['ssl without key', 'rest: { address: "x:1", ssl: { certificate: c } }\n', /config\.rest\.ssl: missing required key 'privateKey'/],
  ['not YAML', 'a: [unclosed\n', /is not valid YAML/],
  ['misspelled transport option', 'rest: { maxMsgMBSize: 5 }\n', /^config\.rest: unknown key 'maxMsgMBSize' \(did you mean 'maxMsgMbSize'\?\)$/],
  ['transport limit', 'grpc: { keepaliveTimeMs: 500 }\n', /^config\.grpc\.keepaliveTimeMs: must be an integer in \[1000, 2147483647\], got 500$/],
  ['misspelled ssl key', 'rest: { ssl: { certificate: c, privateKey: k, verifyclient: true } }\n', /^config\.rest\.ssl: unknown key 'verifyclient' \(did you mean 'verifyClient'\?\)$/],
  ['servable limit', 'servables: [{ name: add, intraOpThreads: 0 }]\n', /^config\.servables\[0\]\.intraOpThreads: must be an integer in \[1, 256\], got 0$/],
];
for (const [name, text, message] of bad) {
  t.test(`error: ${name}`, async (t) => {
    const err = await loadConfigFile(write(`${name.replace(/\W+/g, '_')}.yaml`, text)).catch((e: unknown) => e);
    t.ok(err instanceof ConfigError);
    t.match((err as Error).message, message);
  });
}

t.test('every option of the servers is a key of their config entry (hooks excepted)', async (t) => {
  const c = await loadConfigFile(write('listeners.yaml', 'rest: { maxHeaderBytes: 4096, bodyTimeoutMs: 5000, maxConnections: 100, strictHttp: true }\ngrpc: { streamWindow: 8, keepaliveTimeMs: 60000 }\n'));
  t.same(c.rest, { maxHeaderBytes: 4096, bodyTimeoutMs: 5000, maxConnections: 100, strictHttp: true });
  t.same(c.grpc, { streamWindow: 8, keepaliveTimeMs: 60000 });
  const err = await loadConfigFile(write('hook.yaml', 'rest: { parseInstances: x }\n')).catch((e: unknown) => e);
  t.match((err as Error).message, /config\.rest: unknown key 'parseInstances'/);
});

t.test('defaults are filled in once, after flags: a transport is on at its default address unless null', async (t) => {
  const c = resolveServeConfig({ grpc: null, servables: [{ name: 'add' }] });
  t.equal(c.grpc, null);
  t.same(c.rest, { address: '127.0.0.1:1500', maxMsgMbSize: 100, maxHeaderBytes: 16384, closeTimeoutMs: 10000, bodyTimeoutMs: 60000, reusePort: false, strictHttp: false, controlApi: false });
  t.same(c.log, { format: 'text', level: 'info', accessLog: false });
  t.same(c.servables![0], { name: 'add', version: 0, deviceIds: [0], deviceType: 'cpu', numParallelWorkers: 0, intraOpThreads: 1, maxQueuedRequests: 10000, defaultDeadlineMs: 30000, decMode: 'AES-GCM', batching: {} });
  t.equal(c.drainTimeoutMs, 30000);
});

t.test('docs/configuration.md names every config key', async (t) => {
  const docs = readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const keys = (fields: Record<string, { kind: string; fields?: Record<string, never>; of?: { kind: string; fields?: Record<string, never> } }>): string[] =>
    Object.entries(fields).flatMap(([key, f]) => [key, ...(f.fields ? keys(f.fields) : []), ...(f.kind === 'list' && f.of?.fields ? keys(f.of.fields) : [])]);
  for (const key of new Set(keys(SERVE_CONFIG_OPTIONS as never))) t.match(docs, new RegExp(`\\b${key}\\b`), key);
});

t.test('a missing file is a clear error', async (t) => {
  await t.rejects(loadConfigFile(path.join(dir, 'absent.yaml')), /cannot read config file/);
});
