// HTTP load on the RESTful server: the bundled `add` servable, the seed request, C keep-alive
// clients for D seconds. The clients run in a worker thread so they do not share the server's
// event loop.
//
//   npm run build && node dist/perf/rest-load.js [--connections 32] [--seconds 10] [--instances 1] [--msgpack]
//
// --instances N sends N copies of the seed instance in each request (a list; 1 sends the seed
// body itself, `"instances": {...}`), so larger bodies go through the JSON parser's native path
// (bodies under native/index.ts SMALL_BODY bytes are parsed by its JS twin).
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { ServingServer } from '../server.js';
import { ServableStartConfig } from '../engine/start-config.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { startRestfulServer } from '../transports/rest/server.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const connections = arg('connections', 32);
const seconds = arg('seconds', 10);
const instances = arg('instances', 1);
const msgpack = process.argv.includes('--msgpack');

const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads');
const http = require('node:http');
const { url, body, headers, connections, seconds } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const latencies = [];
let errors = 0;
const end = Date.now() + seconds * 1000;
function one() {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) latencies.push(performance.now() - t0); else errors++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end(body);
  });
}
async function loop() { while (Date.now() < end) await one(); }
Promise.all(Array.from({ length: connections }, loop)).then(() => { agent.destroy(); parentPort.postMessage({ latencies, errors }); });
`;

async function main(): Promise<void> {
  const root = findProjectRoot(process.cwd());
  const dir = join(root, 'servables');
  await ensureExampleModels(dir);
  const engine = new ServingServer();
  engine.log = () => {};
  await engine.startServables(new ServableStartConfig({ servableDirectory: dir, servableName: 'add' }));
  const rest = await startRestfulServer(engine, '127.0.0.1:0');
  const seed = '{"x1":[[1.0, 1.0],[1.0, 1.0]], "x2":[[1.0, 1.0],[1.0, 1.0]]}';
  const json = instances === 1 ? `{"instances":${seed}}` : `{"instances":[${new Array(instances).fill(seed).join(',')}]}`;
  let body: Buffer = Buffer.from(json);
  const headers: Record<string, string> = {};
  if (msgpack) {
    const { Packr } = await import('msgpackr');
    const f = Buffer.from(Float32Array.of(1, 1, 1, 1).buffer);
    const one = { x1: { dtype: 'float32', shape: [2, 2], data: f }, x2: { dtype: 'float32', shape: [2, 2], data: f } };
    body = new Packr({ useRecords: false }).pack({ instances: instances === 1 ? one : new Array(instances).fill(one) });
    headers['content-type'] = 'application/msgpack';
    headers.accept = 'application/msgpack';
  }
  const url = `http://${rest.address}/model/add:add_common`;
  const worker = new Worker(CLIENT, { eval: true, workerData: { url, body, headers, connections, seconds } });
  const { latencies, errors } = await new Promise<{ latencies: number[]; errors: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  await rest.close();
  await engine.stop();
  latencies.sort((a, b) => a - b);
  const q = (p: number): string => (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN).toFixed(2);
  console.log(
    `REST ${msgpack ? 'msgpack' : 'JSON'} add_common, ${instances} instance(s) of ${body.length} B, ${connections} connections, ${seconds} s: ` +
      `${(latencies.length / seconds).toFixed(0)} req/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms, errors ${errors}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
