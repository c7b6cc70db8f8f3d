/**
 * Does the comlink control plane cost the batch data path anything? A device actor's round
 * trip for one small batch (the `add` example model, one [1, 2, 2] instance pair) measured
 *
 *   - through a bare data-path driver (a RunFrame into the request mailbox, a ReplyFrame out of
 *     the reply mailbox, one slot), with the actor's control port attached and idle, then
 *     detached (the port closed after `load`);
 *   - through DeviceHandle (the product path), idle and while another loop makes control calls
 *     (a probe every 10 ms, and back to back as a stress);
 *
 * and the cost of one control call (`health`, `stats`) through comlink. Cells run in
 * alternating rounds so load from other processes hits each alike; the table gives the median
 * round.
 *
 *   npm run build && node dist/perf/device-control-plane.js [--duration-ms 1500] [--rounds 3]
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { BatchInput } from '../actors/device.js';
import { DeviceHandle } from '../actors/device-handle.js';
import { Mailbox } from '../actors/mailbox.js';
import { readReplyFrame, runFrameBytes, writeRunFrame } from '../actors/batch-frames.js';
import { DEVICE_PROTOCOL_VERSION, type DeviceActorInit, type DeviceControl, type DeviceThreadData, type ReplyFrame, type RunFrame } from '../actors/protocol.js';
import { ensureExampleModels, findProjectRoot } from '../servables/generate-models.js';
import { type LoadResult, closedLoop, table } from './harness.js';

const { values } = parseArgs({
  options: { 'duration-ms': { type: 'string', default: '1500' }, rounds: { type: 'string', default: '3' } },
});
const durationMs = Number(values['duration-ms']);
const rounds = Number(values.rounds);
const root = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));
const servables = path.join(root, 'servables');
await ensureExampleModels(servables);

const init: DeviceActorInit = {
  protocolVersion: DEVICE_PROTOCOL_VERSION,
  deviceId: 0,
  deviceType: 'cpu',
  intraOpThreads: 1,
  models: [{ key: 'tensor_add.onnx', files: [path.join(servables, 'add/1/tensor_add.onnx')] }],
};
const ACTOR_ENTRY = new URL('../actors/device-actor.js', import.meta.url);

/** The actor spoken to with nothing but the data-path frames: one slot, one batch at a time. */
class BareActor {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  readonly control: Comlink.Remote<DeviceControl>;
  private readonly slot = new SharedArrayBuffer(64);
  private readonly requests = Mailbox.create(4096);
  private readonly replies = Mailbox.create(4096);
  private nextId = 1;

  constructor() {
    const channel = new MessageChannel();
    this.port = channel.port1;
    const workerData: DeviceThreadData = {
      ...init,
      control: channel.port2,
      requests: this.requests.buffer,
      replies: this.replies.buffer,
      slots: [this.slot],
    };
    this.worker = new Worker(ACTOR_ENTRY, { workerData, transferList: [channel.port2], execArgv: [] });
    this.control = Comlink.wrap<DeviceControl>(nodeEndpoint(channel.port1));
  }

  /** Closes the control port: the actor keeps serving batches, comlink is gone from both ends. */
  detachControl(): void {
    this.port.close();
  }

  async run(): Promise<ReplyFrame> {
    const x = new Float32Array(this.slot, 0, 8);
    x.set([1, 2, 3, 4, 1, 1, 1, 1]);
    const dims = [1, 2, 2];
    const frame: RunFrame = {
      id: this.nextId++,
      slot: 0,
      generation: 0,
      model: 0,
      subgraph: 0,
      inputs: [
        { dtype: 'float32', dims, offset: 0, length: 4 },
        { dtype: 'float32', dims, offset: 16, length: 4 },
      ],
    };
    this.requests.post(runFrameBytes(frame), (view, at) => writeRunFrame(frame, view, at));
    for (;;) {
      const reply = this.replies.take(readReplyFrame);
      if (reply) return reply;
      await this.replies.whenPosted();
    }
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    await this.worker.terminate(); // between batches: nothing runs
    await exited;
  }
}

const batch: BatchInput[] = [
  { dtype: 'float32', dims: [1, 2, 2], parts: [Float32Array.of(1, 2, 3, 4)] },
  { dtype: 'float32', dims: [1, 2, 2], parts: [Float32Array.of(1, 1, 1, 1)] },
];
const handleRun = async (h: DeviceHandle): Promise<void> => (await h.run(0, 0, batch)).release();

/**
 * Runs `call` at concurrency 1 while `background` loops (every `everyMs`, or back to back when
 * 0), then stops the loop.
 */
async function alongside(
  call: () => Promise<unknown>,
  background: () => Promise<unknown>,
  everyMs: number,
): Promise<{ result: LoadResult; calls: number }> {
  let running = true;
  let calls = 0;
  const loop = (async () => {
    while (running) {
      await background();
      calls++;
      if (everyMs > 0) await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  const result = await closedLoop(call, { concurrency: 1, durationMs });
  running = false;
  await loop;
  return { result, calls: calls / result.seconds };
}

const attached = new BareActor();
await attached.control.load();
const detached = new BareActor();
await detached.control.load();
detached.detachControl();
const handle = new DeviceHandle({ init, slots: 2, initialSlotBytes: 1024, events: { slotFreed: () => {}, died: () => {} } });
await handle.ready;

type Sample = { readonly result: LoadResult; readonly note?: string };
type Cell = { readonly name: string; readonly measure: () => Promise<Sample> };
const cells: Cell[] = [
  { name: 'bare data path, control port attached (idle)', measure: async () => ({ result: await closedLoop(() => attached.run(), { concurrency: 1, durationMs }) }) },
  { name: 'bare data path, control port detached', measure: async () => ({ result: await closedLoop(() => detached.run(), { concurrency: 1, durationMs }) }) },
  { name: 'DeviceHandle.run, control plane idle', measure: async () => ({ result: await closedLoop(() => handleRun(handle), { concurrency: 1, durationMs }) }) },
  {
    name: 'DeviceHandle.run, health() every 10 ms alongside',
    measure: async () => {
      const { result, calls } = await alongside(() => handleRun(handle), () => handle.health(), 10);
      return { result, note: `${calls.toFixed(0)} health calls/s alongside` };
    },
  },
  {
    name: 'DeviceHandle.run, health() back to back alongside',
    measure: async () => {
      const { result, calls } = await alongside(() => handleRun(handle), () => handle.health(), 0);
      return { result, note: `${calls.toFixed(0)} health calls/s alongside (stress)` };
    },
  },
  { name: 'control call: DeviceHandle.health()', measure: async () => ({ result: await closedLoop(() => handle.health(), { concurrency: 1, durationMs }) }) },
  { name: 'control call: DeviceHandle.stats()', measure: async () => ({ result: await closedLoop(() => handle.stats(), { concurrency: 1, durationMs }) }) },
];

const measured = cells.map((cell) => ({ cell, samples: [] as Sample[] }));
for (let r = 0; r < rounds; r++) {
  for (const { cell, samples } of measured) samples.push(await cell.measure());
}
await Promise.all([attached.stop(), detached.stop(), handle.stop()]);

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const rows = measured.map(({ cell, samples: s }) => {
  return [
    cell.name,
    median(s.map((x) => x.result.rps)),
    median(s.map((x) => x.result.p50Ms)) * 1000,
    median(s.map((x) => x.result.p99Ms)) * 1000,
    s.map((x) => x.note).find(Boolean) ?? '',
  ];
});
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(
  `\nDevice actor control plane vs data path — ${os.cpus().length} cores, ${cpu}, Node ${process.version}, ` +
    `concurrency 1, ${rounds} rounds of ${durationMs} ms per cell (median round)\n\n`,
);
process.stdout.write(table(['path', 'round trips/s', 'p50 µs', 'p99 µs', 'note'], rows) + '\n');
