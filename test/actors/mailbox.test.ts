// The shared-memory mailbox (actors/mailbox.ts) on its own and under a real device actor:
// frames across the ring's end, a full ring pushing back, many producers' frames through a
// real worker thread, and an actor dying with batches still in its request mailbox.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { Mailbox } from '../../dist/actors/mailbox.js';
import { DeviceHandle } from '../../dist/actors/device-handle.js';
import type { BatchInput, BatchResult } from '../../dist/actors/device.js';
import { DEVICE_PROTOCOL_VERSION } from '../../dist/actors/protocol.js';
import { ServingError } from '../../dist/engine/errors.js';
import { identityModel, mlpModel } from '../../dist/servables/example-models.js';
import { servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('mailbox');
const WIDTH = 256;
fx.model('mlp', 1, 'mlp.onnx', mlpModel({ layers: 16, width: WIDTH, seed: 3, batch: 'N' }));
fx.model('strings', 1, 'identity.onnx', identityModel('string', { batch: 'N' }));
t.teardown(() => fx.remove());

/** A frame of `n` bytes: byte i is (seq + i) & 255, so a frame torn or out of order shows. */
function post(box: Mailbox, seq: number, n: number): boolean {
  return box.post(n, (view, at) => {
    for (let i = 0; i < n; i++) view.setUint8(at + i, (seq + i) & 255);
  });
}

function take(box: Mailbox): { seq: number; n: number; intact: boolean } | undefined {
  return box.take((view, at, n) => {
    const seq = n > 0 ? view.getUint8(at) : -1;
    let intact = true;
    for (let i = 0; i < n; i++) if (view.getUint8(at + i) !== ((seq + i) & 255)) intact = false;
    return { seq, n, intact };
  });
}

t.test('frames of varying sizes cross the end of the ring many times, intact and in order', async (t) => {
  const box = Mailbox.create(256);
  t.equal(box.capacity, 256);
  let posted = 0;
  let taken = 0;
  let torn = 0;
  let outOfOrder = 0;
  for (let round = 0; round < 500; round++) {
    // up to three frames in the ring at once, sizes 1..61 bytes (not multiples of 8)
    for (let k = 0; k < 3; k++) if (post(box, posted & 255, 1 + ((posted * 13) % 61))) posted++;
    for (let k = 0; k < 2; k++) {
      const f = take(box);
      if (!f) break;
      if (!f.intact) torn++;
      if (f.seq !== (taken & 255) || f.n !== 1 + ((taken * 13) % 61)) outOfOrder++;
      taken++;
    }
  }
  for (let f = take(box); f; f = take(box)) {
    if (f.seq !== (taken & 255)) outOfOrder++;
    taken++;
  }
  t.ok(posted > 500, `${posted} frames posted`);
  t.equal(taken, posted, 'every frame taken once');
  t.equal(torn, 0, 'no frame torn');
  t.equal(outOfOrder, 0, 'in the order posted');
  t.equal(box.size, 0);
  t.notOk(box.hasFrame());
});

t.test('a full ring refuses a post until the consumer takes a frame; an oversized frame is a RangeError', async (t) => {
  const box = Mailbox.create(128);
  let posted = 0;
  while (post(box, posted, 24)) posted++;
  t.equal(posted, 4, 'four 32-byte frames fill 128 bytes');
  t.equal(box.size, 4);
  t.notOk(post(box, 99, 1), 'no room even for one byte');
  let roomMade = false;
  const room = box.whenRoom(24).then(() => (roomMade = true));
  await new Promise((r) => setImmediate(r));
  t.notOk(roomMade, 'whenRoom waits while the ring is full');
  t.same(take(box), { seq: 0, n: 24, intact: true });
  await room;
  t.ok(post(box, 4, 24), 'the freed frame takes a new one');
  t.same(
    [take(box), take(box), take(box), take(box), take(box)].map((f) => f?.seq),
    [1, 2, 3, 4, undefined],
    'nothing lost or duplicated',
  );
  t.throws(() => box.post(box.maxFrameBytes + 1, () => {}), RangeError);
  t.ok(post(box, 5, box.maxFrameBytes), 'a frame of maxFrameBytes fits an empty ring');
});

t.test('many producers post through a small ring to a real worker thread, which answers each frame once', async (t) => {
  const requests = Mailbox.create(256);
  const replies = Mailbox.create(256);
  const mailboxUrl = new URL('../../dist/actors/mailbox.js', import.meta.url).href;
  // The consumer: sleeps in Atomics.wait, answers each request with its number doubled (the
  // reply mailbox full → it blocks until the main thread takes some), stops on a frame of -1.
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     import(workerData.mailboxUrl).then(({ Mailbox }) => {
       const requests = new Mailbox(workerData.requests);
       const replies = new Mailbox(workerData.replies);
       for (;;) {
         const n = requests.take((view, at) => view.getFloat64(at, true));
         if (n === undefined) { requests.sleep(20, 50); continue; }
         if (n === -1) break;
         while (!replies.post(8, (view, at) => view.setFloat64(at, n * 2, true))) replies.sleepForRoom(8, 50);
       }
     });`,
    { eval: true, workerData: { mailboxUrl, requests: requests.buffer, replies: replies.buffer } },
  );
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const PRODUCERS = 8;
  const EACH = 200;
  const answers = new Map<number, number>();
  let backPressured = 0;
  const postOne = async (n: number): Promise<void> => {
    while (!requests.post(8, (view, at) => view.setFloat64(at, n, true))) {
      backPressured++;
      await requests.whenRoom(8);
    }
  };
  const producers = Array.from({ length: PRODUCERS }, async (_, p) => {
    for (let i = 0; i < EACH; i++) {
      await postOne(p * EACH + i + 1);
      if (i % 16 === 0) await new Promise((r) => setImmediate(r)); // interleave the producers
    }
  });
  const collecting = (async () => {
    while (answers.size < PRODUCERS * EACH) {
      let reply = replies.take((view, at) => view.getFloat64(at, true));
      if (reply === undefined) await replies.whenPosted();
      for (; reply !== undefined; reply = replies.take((view, at) => view.getFloat64(at, true))) {
        answers.set(reply / 2, (answers.get(reply / 2) ?? 0) + 1);
      }
    }
  })();
  await Promise.all(producers);
  await collecting;
  await postOne(-1);
  await exited;
  t.equal(answers.size, PRODUCERS * EACH, 'every frame answered');
  t.ok([...answers.values()].every((c) => c === 1), 'each exactly once');
  t.ok(backPressured > 0, `the ring pushed back (${backPressured} refused posts retried)`);
});

function start(model: string, file: string, slots: number, died: (reason: string) => void = () => {}): DeviceHandle {
  return new DeviceHandle({
    init: {
      protocolVersion: DEVICE_PROTOCOL_VERSION,
      deviceId: 0,
      deviceType: 'cpu',
      intraOpThreads: 1,
      models: [{ key: model, files: [path.join(fx.dir, model, '1', file)] }],
    },
    slots,
    initialSlotBytes: 64,
    events: { slotFreed: () => {}, died },
  });
}

t.test('an actor that dies with batches in its request mailbox answers each with E_ACTOR_DIED', async (t) => {
  const deaths: string[] = [];
  const h = start('mlp', 'mlp.onnx', 8, (reason) => deaths.push(reason));
  await h.ready;
  const rows = 32; // 32 KiB of input: bigger than the slot, so each batch also sends a new buffer
  const input: BatchInput[] = [{ dtype: 'float32', dims: [rows, WIDTH], parts: [new Float32Array(rows * WIDTH).fill(0.5)] }];
  const killed = h.kill(); // the crash is read at the actor's next turn of its event loop
  const runs: Promise<BatchResult>[] = [];
  while (h.hasFreeSlot()) runs.push(h.run(0, 0, input));
  t.equal(runs.length, 8);
  const outcomes = await Promise.allSettled(runs);
  await killed;
  const answered = outcomes.filter((o) => o.status === 'fulfilled').length;
  const died = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof ServingError && o.reason.code === 'E_ACTOR_DIED').length;
  for (const o of outcomes) if (o.status === 'fulfilled') o.value.release();
  t.equal(answered + died, 8, `every batch settled: ${answered} answered, ${died} E_ACTOR_DIED`);
  t.ok(died > 0, 'batches still in the mailbox were answered with the death error');
  t.equal(h.outstanding, 0, 'nothing left in flight');
  t.same(deaths, ['device actor crashed on request (fault injection)']);
});

t.test('string tensors travel packed in the slot buffer, both ways, growing it when needed', async (t) => {
  const h = start('strings', 'identity.onnx', 2);
  await h.ready;
  const words = ['', 'a', 'héllo wörld', 'x'.repeat(300)].map((s) => new TextEncoder().encode(s));
  const result = await h.run(0, 0, [{ dtype: 'string', dims: [words.length], strings: words }]);
  const out = result.outputs[0];
  t.same(out && 'strings' in out ? out.strings.map((s) => new TextDecoder().decode(s)) : undefined, ['', 'a', 'héllo wörld', 'x'.repeat(300)]);
  result.release();
  await h.stop();
});
