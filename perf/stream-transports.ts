/**
 * Event rate of one stream through each streaming surface, in the same process and run,
 * interleaved each round: a stream stage yields N short strings (no model), read
 *
 *   - "engine": `engine.inferStream` in process (the floor the transports add to);
 *   - "grpc":   `Client.inferStream` over actorserve.v1 InferStream on loopback;
 *   - "sse":    a node:http client reading REST Server-Sent Events on loopback.
 *
 * Client and server share this process (and its CPU), so the transports' figures include both
 * ends. Reported: events/s of each round and their median, and the load average.
 *
 *   npm run build && node dist/perf/stream-transports.js [--events 20000] [--rounds 5]
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ServableStartConfig, ServingServer, stringTensor } from '../index.js';
import { startGrpcServer } from '../transports/grpc/server.js';
import { startRestfulServer } from '../transports/rest/server.js';
import { Client } from '../transports/grpc/client.js';
import { table } from './harness.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.events);
const rounds = Number(values.rounds);

const CONFIG = `import { register, tensorStrings, type StreamContext, type Tensor } from 'actorserve';
export async function* pieces(text: Tensor, ctx: StreamContext) {
  const prefix = tensorStrings(text).join('');
  for (let i = 0; i < Number(ctx.parameters.max_tokens); i++) yield prefix + i + ' ';
}
register.method('tokens', { outputs: ['text_output'] }, (text_input) => register.addStage(pieces, [text_input], { stream: true }));
`;

// a servable folder anywhere: its `import ... from 'actorserve'` resolves to this package (engine/own-package-hooks.ts)
const dir = mkdtempSync(path.join(os.tmpdir(), 'actorserve-stream-perf-'));
mkdirSync(path.join(dir, 'streamer'));
writeFileSync(path.join(dir, 'streamer', 'servable_config.ts'), CONFIG);
const engine = new ServingServer();
engine.log = () => {};
await engine.startServables(new ServableStartConfig({ servableDirectory: dir, servableName: 'streamer', numParallelWorkers: 1 }));
const grpc = await startGrpcServer(engine, '127.0.0.1:0');
const rest = await startRestfulServer(engine, '127.0.0.1:0');
const client = new Client(grpc.address, 'streamer', 'tokens');
const parameters = { max_tokens: N };

function sse(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: rest.port, path: '/model/streamer:tokens', method: 'POST', agent: false, headers: { Accept: 'text/event-stream' } },
      (res) => {
        let events = 0;
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const parts = (tail + chunk).split('\n\n');
          tail = parts.pop()!;
          events += parts.length;
        });
        res.on('end', () => resolve(events - 1)); // less the end event
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ instances: [{ text_input: 'w' }], parameters }));
  });
}

const runs: Record<string, () => Promise<number>> = {
  engine: async () => {
    let n = 0;
    for await (const e of engine.inferStream('streamer', 'tokens', [{ text_input: stringTensor('w') }], { parameters })) if ('outputs' in e) n++;
    return n;
  },
  grpc: async () => {
    let n = 0;
    for await (const e of client.inferStream({ text_input: 'w' }, { parameters })) if ('outputs' in e) n++;
    return n;
  },
  sse,
};

const rates: Record<string, number[]> = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
const loadBefore = os.loadavg()[0]!;
try {
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(runs)) {
      const t0 = performance.now();
      const n = await run();
      if (n !== N) throw new Error(`${name}: ${n} events, expected ${N}`);
      rates[name]!.push(Math.round(n / ((performance.now() - t0) / 1000)));
    }
  }
} finally {
  client.close();
  await grpc.close();
  await rest.close();
  await engine.stop();
  rmSync(dir, { recursive: true, force: true });
}
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
console.log(`one stream of ${N} short text events, ${rounds} rounds interleaved; load average ${loadBefore.toFixed(1)} → ${os.loadavg()[0]!.toFixed(1)}`);
console.log(table(['surface', 'events/s per round', 'median events/s'], Object.entries(rates).map(([k, v]) => [k, v.join(' '), median(v)])));
