/**
 * The device data path's mechanism on its own, without ONNX Runtime or the engine: one small
 * batch descriptor from the main thread to a worker thread and an answer back, at concurrency
 * 1, through
 *
 *   - postMessage both ways (the device data path before the mailbox: structured clone of a
 *     descriptor object on the worker's port);
 *   - two mailboxes (actors/mailbox.ts): the worker sleeps in `Atomics.wait` (with and without
 *     a 50 µs spin first), the main thread hears the answer through `Atomics.waitAsync`.
 *
 * Cells run in alternating rounds in one process so load from other processes hits each
 * alike; the table gives the median round, with the main thread's CPU µs per round trip.
 *
 *   npm run build && node dist/perf/mailbox-round-trip.js [--duration-ms 300] [--rounds 10]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Mailbox } from '../actors/mailbox.js';
import { type LoadResult, closedLoop, table } from './harness.js';

interface Descriptor {
  readonly id: number;
  readonly inputs: readonly { readonly dtype: string; readonly dims: readonly number[]; readonly offset: number; readonly length: number }[];
}
const descriptor = (id: number): Descriptor => ({
  id,
  inputs: [
    { dtype: 'float32', dims: [1, 2, 2], offset: 0, length: 4 },
    { dtype: 'float32', dims: [1, 2, 2], offset: 16, length: 4 },
  ],
});

type Setup = { readonly mode: 'port' } | { readonly mode: 'mailbox'; readonly spinMicros: number; readonly requests: SharedArrayBuffer; readonly replies: SharedArrayBuffer };

if (!isMainThread) {
  const setup = workerData as Setup;
  const port = parentPort!;
  if (setup.mode === 'port') {
    port.on('message', (d: Descriptor) => port.postMessage({ id: d.id, outputs: [d.inputs[0]] }));
  } else {
    const requests = new Mailbox(setup.requests);
    const replies = new Mailbox(setup.replies);
    port.on('message', () => {}); // keeps the thread alive, as the device actor's control port does
    for (;;) {
      const id = requests.take((view, at) => view.getFloat64(at, true));
      if (id !== undefined) {
        while (!replies.post(8, (view, at) => view.setFloat64(at, id, true))) replies.sleepForRoom(8, 50);
        continue;
      }
      if (requests.sleep(setup.spinMicros, 50) !== 'frame') await new Promise((resolve) => setImmediate(resolve));
    }
  }
} else {
  const { values } = parseArgs({ options: { 'duration-ms': { type: 'string', default: '300' }, rounds: { type: 'string', default: '10' } } });
  const durationMs = Number(values['duration-ms']);
  const rounds = Number(values.rounds);
  const self = new URL(import.meta.url);

  const portWorker = new Worker(self, { workerData: { mode: 'port' } satisfies Setup });
  let answer: (() => void) | undefined;
  portWorker.on('message', () => answer?.());
  let nextId = 1;
  const portTrip = (): Promise<void> =>
    new Promise((resolve) => {
      answer = resolve;
      portWorker.postMessage(descriptor(nextId++));
    });

  const mailboxTrip = (spinMicros: number): { trip: () => Promise<void>; worker: Worker } => {
    const requests = Mailbox.create(4096);
    const replies = Mailbox.create(4096);
    const worker = new Worker(self, { workerData: { mode: 'mailbox', spinMicros, requests: requests.buffer, replies: replies.buffer } satisfies Setup });
    const trip = async (): Promise<void> => {
      const id = nextId++;
      requests.post(8, (view, at) => view.setFloat64(at, id, true));
      while (replies.take((view, at) => view.getFloat64(at, true)) === undefined) await replies.whenPosted();
    };
    return { trip, worker };
  };
  const sleeping = mailboxTrip(0);
  const spinning = mailboxTrip(50);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the workers start

  const cells = [
    { name: 'postMessage both ways', call: portTrip },
    { name: 'mailboxes, worker sleeps at once (Atomics.wait / waitAsync)', call: sleeping.trip },
    { name: 'mailboxes, worker spins 50 µs, then sleeps', call: spinning.trip },
  ];
  const samples = cells.map(() => [] as LoadResult[]);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? cells.map((_, i) => i) : cells.map((_, i) => cells.length - 1 - i);
    for (const i of order) samples[i]!.push(await closedLoop(cells[i]!.call, { concurrency: 1, durationMs, warmupMs: 50 }));
  }
  await Promise.all([portWorker.terminate(), sleeping.worker.terminate(), spinning.worker.terminate()]);

  const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const rows = cells.map((cell, i) => {
    const s = samples[i]!;
    return [cell.name, median(s.map((x) => x.rps)), median(s.map((x) => x.p50Ms)) * 1000, median(s.map((x) => x.p99Ms)) * 1000, median(s.map((x) => x.threadCpuMicros))];
  });
  process.stdout.write(
    `\nDevice data path mechanism — ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ` +
      `load average ${os.loadavg()[0]!.toFixed(1)}, concurrency 1, ${rounds} rounds of ${durationMs} ms per cell (median round)\n\n`,
  );
  process.stdout.write(table(['path', 'round trips/s', 'p50 µs', 'p99 µs', 'main thread µs/round trip'], rows) + '\n');
}
