// The serve config file: JSON and YAML, schema validation with errors that name the key.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfigFile } from '../../dist/cli/config.js';

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
];
for (const [name, text, message] of bad) {
  t.test(`error: ${name}`, async (t) => {
    const err = await loadConfigFile(write(`${name.replace(/\W+/g, '_')}.yaml`, text)).catch((e: unknown) => e);
    t.ok(err instanceof ConfigError);
    t.match((err as Error).message, message);
  });
}

t.test('a missing file is a clear error', async (t) => {
  await t.rejects(loadConfigFile(path.join(dir, 'absent.yaml')), /cannot read config file/);
});
