/**
 * Device actor: the worker-thread entry. Owns one ONNX Runtime session per model subgraph,
 * created inside this thread, and runs batches described by the supervisor. Inputs are read
 * from, and outputs written to, the slot's SharedArrayBuffer; only descriptors travel, as
 * frames in the request and reply mailboxes (mailbox.ts). Control calls (load, health, stats,
 * drain, stop, crash) arrive through comlink on the control port of the start-up data (see
 * protocol.ts).
 *
 * Once loaded, the actor's pump takes batches from the request mailbox one at a time. With
 * none waiting it spins for SPIN_MICROS, then sleeps in `Atomics.wait`; the supervisor rings
 * the doorbell with each batch and after each control call, and the sleep ends after
 * IDLE_WAIT_MS at the latest. A wake-up without a batch returns to the event loop, where
 * control messages (and anything they scheduled) run; a batch yields there too, inside
 * onnxruntime-node's `session.run`.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import * as ort from 'onnxruntime-node';
import { type DType, type NumericArray, TYPED_ARRAY, allocate, dtypeFromOrt, isNumericDType } from '../engine/dtypes.js';
import { type GraphStatePlan, planStateGraphs, stackStates, unstackState } from '../engine/sequence.js';
import { MISSING_KEY_MESSAGE, decryptModel, isEncryptedModel } from '../engine/model-crypto.js';
import { Mailbox } from './mailbox.js';
import { encodeReplyFrame, packStrings, packedStringBytes, readRunFrame } from './batch-frames.js';
import {
  DEVICE_PROTOCOL_VERSION,
  type DeviceActorHealth,
  type DeviceControl,
  type DeviceThreadData,
  type GraphInfo,
  type LoadReply,
  type ReplyFrame,
  type RunFrame,
  type SequenceRow,
  type SlotBufferMessage,
  type TensorRef,
  type ValueInfo,
  type WarmupRun,
  align8,
  protocolMismatch,
} from './protocol.js';

const init = workerData as DeviceThreadData;
if (!parentPort) throw new Error('device-actor.js is a worker thread entry');
const port = parentPort;
const startedAt = performance.now();
const sessions: ort.InferenceSession[][] = [];
const requests = new Mailbox(init.requests);
const replies = new Mailbox(init.replies);
/** Each slot's buffer and its generation (a bigger buffer replaces it, from either side). */
const slotBuffers = init.slots.map((buffer) => ({ buffer, generation: 0 }));
/** Batches taken from the mailbox and not answered yet (0 or 1: they run one at a time). */
let running = 0;
let lastAnsweredId = 0;
let phase: DeviceActorHealth['phase'] = 'loading';
let batchesRun = 0;
let batchesFailed = 0;

/**
 * [model][subgraph]; undefined for a stateless model. A state declaration that does not fit
 * the graphs leaves a string (why): the supervisor refuses the load with the same check.
 */
const statePlans: (GraphStatePlan[] | string | undefined)[] = [];
/** Per stateful model: sequence handle → its state tensors' data (index = state index). */
const stateStores: (Map<number, (NumericArray | undefined)[]> | undefined)[] = [];

function sessionOptions(): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: init.deviceType === 'cuda' ? [{ name: 'cuda', deviceId: init.deviceId }, 'cpu'] : ['cpu'],
  };
}

async function loadModelFile(file: string): Promise<ort.InferenceSession> {
  const bytes = await readFile(file);
  let plain: Buffer | undefined;
  try {
    if (init.decryption) {
      if (!isEncryptedModel(bytes)) throw new Error('a decKey is set but the file is not encrypted');
      plain = decryptModel(bytes, init.decryption.key, init.decryption.mode);
    } else if (isEncryptedModel(bytes)) {
      throw new Error(MISSING_KEY_MESSAGE);
    }
    return await ort.InferenceSession.create(plain ?? bytes, sessionOptions());
  } finally {
    plain?.fill(0); // the plaintext model lives only in memory, and only until the session holds it
  }
}

function valueInfo(meta: ort.InferenceSession.ValueMetadata, file: string): ValueInfo {
  const dtype = meta.isTensor ? dtypeFromOrt(meta.type) : undefined;
  if (!meta.isTensor || !dtype) throw new Error(`${file}: value '${meta.name}' is not a tensor of a served dtype`);
  return { name: meta.name, dtype, dims: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : String(d))) };
}

async function load(): Promise<LoadReply> {
  const mismatch = protocolMismatch(init.protocolVersion, DEVICE_PROTOCOL_VERSION);
  if (mismatch) throw new Error(mismatch);
  const graphs: GraphInfo[][] = [];
  for (const model of init.models) {
    const subs: ort.InferenceSession[] = [];
    const infos: GraphInfo[] = [];
    for (const file of model.files) {
      let session: ort.InferenceSession;
      try {
        session = await loadModelFile(file);
      } catch (err) {
        throw new Error(`loading ${file} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      subs.push(session);
      infos.push({
        inputs: session.inputMetadata.map((m) => valueInfo(m, file)),
        outputs: session.outputMetadata.map((m) => valueInfo(m, file)),
      });
    }
    sessions.push(subs);
    graphs.push(infos);
    statePlans.push(model.state ? planStates(model.key, model.state, infos) : undefined);
    stateStores.push(model.state ? new Map() : undefined);
  }
  const batches = init.measureCost;
  const warmup = batches ? await Promise.all(sessions.map((subs, m) => Promise.all(subs.map((s, g) => timeRuns(s, graphs[m]![g]!, batches[m] ?? 1))))) : undefined;
  phase = 'ready';
  return { protocolVersion: DEVICE_PROTOCOL_VERSION, graphs, ...(warmup ? { warmup } : {}) };
}

/** A model slower than this per instance (its fastest warm run) is timed at batch 1 only (a bigger warm-up batch would delay the load). */
const WARMUP_BATCH_MAX_MS = 20;
/** Timed warm-up runs stop once they took this long together. */
const WARMUP_BUDGET_MS = 100;
const WARMUP_RUNS = 10;

/**
 * The model's cost for the device plan (engine/device-plan.ts), on zeros: an untimed run of one
 * instance (the first run allocates), then timed runs of one instance; unless those were slow,
 * an untimed run of `batch` instances in a dynamic first dim (other dynamic dims 1) and timed
 * runs of that batch. Timed runs: up to WARMUP_RUNS within WARMUP_BUDGET_MS, the fastest
 * counting (the machine may be busy: a run that lost its core is not the model's cost). A batch
 * shows the cost of an instance once ONNX Runtime's fixed cost per run is shared, as dynamic
 * batching shares it under load. A graph with a string input, or that refuses zeros, answers
 * why instead.
 */
async function timeRuns(session: ort.InferenceSession, info: GraphInfo, batch: number): Promise<WarmupRun | string> {
  // The batch dim's name where the graph names it ('N'): every dim of that name is the batch,
  // wherever it sits (a state input [1, N, 8] beside x [N, 4]), as is every dynamic first dim;
  // other dynamic dims are 1.
  const batchName = info.inputs.map((i) => i.dims[0]).find((d): d is string => typeof d === 'string' && d !== '');
  const feeds = (n: number): Record<string, ort.Tensor> | string => {
    const out: Record<string, ort.Tensor> = {};
    for (const input of info.inputs) {
      if (!isNumericDType(input.dtype)) return `input '${input.name}' is ${input.dtype}`;
      const dims = input.dims.map((d, k) => (typeof d === 'number' ? d : k === 0 || d === batchName ? n : 1));
      out[input.name] = new ort.Tensor(input.dtype as 'float32', allocate(input.dtype, dims.reduce((a, b) => a * b, 1)) as Float32Array, dims);
    }
    return out;
  };
  const once = async (f: Record<string, ort.Tensor>): Promise<number> => {
    const t0 = performance.now();
    const results = await session.run(f);
    const ms = performance.now() - t0;
    for (const t of Object.values(results)) t.dispose();
    return ms;
  };
  const fastest = async (f: Record<string, ort.Tensor>): Promise<number> => {
    await once(f);
    let best = Infinity;
    let spent = 0;
    for (let i = 0; i < WARMUP_RUNS && spent < WARMUP_BUDGET_MS; i++) {
      const ms = await once(f);
      best = Math.min(best, ms);
      spent += ms;
    }
    return best;
  };
  try {
    const single = feeds(1);
    if (typeof single === 'string') return single;
    const ms = await fastest(single);
    if (ms >= WARMUP_BATCH_MAX_MS || batch <= 1 || info.inputs.every((i) => typeof i.dims[0] === 'number')) return { ms, batch: 1 };
    return { ms: await fastest(feeds(batch) as Record<string, ort.Tensor>), batch };
  } catch (err) {
    return `a run on zeros failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** How each graph of a stateful model runs (engine/sequence.ts checks the declaration), or why it cannot. */
function planStates(key: string, state: NonNullable<DeviceThreadData['models'][number]['state']>, infos: readonly GraphInfo[]): GraphStatePlan[] | string {
  try {
    return planStateGraphs(key, state, infos);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** The state inputs of a batch: each row's state stacked along the state's batch axis. */
function stateFeeds(plan: GraphStatePlan, store: Map<number, (NumericArray | undefined)[]>, rows: readonly SequenceRow[], feeds: Record<string, ort.Tensor>): void {
  for (const p of plan.reads) {
    const data = rows.map((r) => {
      if (r.handle === 0) return undefined; // padding: zeros
      if (r.start) return p.initial; // the initial value (undefined: zeros)
      const kept = store.get(r.handle);
      if (!kept) throw new Error(`no state '${p.input}' is held for sequence handle ${r.handle} (internal: the supervisor sent a step of a sequence this actor does not hold)`);
      return kept[p.index] ?? p.initial; // none kept: no graph has written it since the start
    });
    const dims = [...p.rowDims];
    dims[p.axis] = rows.length;
    feeds[p.input] = new ort.Tensor(p.dtype as 'float32', stackStates(data, p.dtype, p.rowDims, p.axis) as Float32Array, dims);
  }
}

/**
 * Keeps each row's new state (a copy); rows of padding and of ending sequences keep nothing.
 * A state this graph does not write stays as it was (at a start: its initial value).
 */
function keepStates(plan: GraphStatePlan, store: Map<number, (NumericArray | undefined)[]>, rows: readonly SequenceRow[], results: ort.InferenceSession.OnnxValueMapType): void {
  for (const p of plan.writes) {
    const t = results[p.output]!;
    const same = t.dims.length === p.rowDims.length && t.dims.every((d, i) => (i === p.axis ? d === rows.length : d === p.rowDims[i]));
    if (!same) throw new Error(`state output '${p.output}' has dims [${t.dims.join(', ')}]; expected [${p.rowDims.map((d, i) => (i === p.axis ? rows.length : d)).join(', ')}]`);
  }
  rows.forEach((r, i) => {
    if (r.handle === 0 || r.end) return;
    let entry = r.start ? undefined : store.get(r.handle);
    if (!entry) store.set(r.handle, (entry = []));
    for (const p of plan.writes) {
      const t = results[p.output]!;
      entry[p.index] = unstackState(t.data as NumericArray, t.dims, p.axis, i);
    }
  });
}

/**
 * onnxruntime-node refuses typed arrays backed by a SharedArrayBuffer ("Invalid argument"),
 * so each input is copied from the slot into a staging buffer of this thread, reused across
 * batches (one memcpy; see perf/ for its cost).
 */
const staging: ArrayBuffer[] = [];

function stagingBuffer(index: number, bytes: number): ArrayBuffer {
  let b = staging[index];
  if (!b || b.byteLength < bytes) {
    b = new ArrayBuffer(Math.max(bytes, (b?.byteLength ?? 0) * 2, 1024));
    staging[index] = b;
  }
  return b;
}

/**
 * Spinning before a sleep: a batch that follows within this many µs is taken without a
 * futex wake-up. Only where a core is left for it: on 2 cores the spinning actor slowed the
 * main thread it waits for (engine API add, c=1: p50 137 µs with a 50 µs spin, 62 µs without;
 * docs/architecture.md). ACTORSERVE_DEVICE_SPIN_US overrides it, for measurements.
 */
const SPIN_MICROS = Number(process.env['ACTORSERVE_DEVICE_SPIN_US'] ?? (availableParallelism() > 2 ? 50 : 0));
/** The longest sleep in `Atomics.wait` before the actor returns to its event loop anyway. */
const IDLE_WAIT_MS = 50;

function toOrt(ref: TensorRef, buffer: SharedArrayBuffer, index: number): ort.Tensor {
  if (!isNumericDType(ref.dtype)) {
    const lengths = new Uint32Array(buffer, ref.offset, ref.length);
    let at = ref.offset + 4 * ref.length;
    const strings: string[] = [];
    for (const n of lengths) {
      strings.push(Buffer.from(buffer, at, n).toString('utf8'));
      at += n;
    }
    return new ort.Tensor('string', strings, ref.dims);
  }
  const dtype = ref.dtype;
  const Ctor = TYPED_ARRAY[dtype];
  const bytes = ref.length * Ctor.BYTES_PER_ELEMENT;
  const local = stagingBuffer(index, bytes);
  new Uint8Array(local, 0, bytes).set(new Uint8Array(buffer, ref.offset, bytes));
  return new ort.Tensor(dtype as 'float32', new Ctor(local, 0, ref.length) as Float32Array, ref.dims);
}

/** Slot buffers the supervisor sent, waiting for the frame that names them (or the reverse). */
const bufferWaiters = new Map<number, (message: SlotBufferMessage) => void>();

port.on('message', (message: SlotBufferMessage) => {
  const slot = slotBuffers[message.slot];
  if (!slot || message.generation <= slot.generation) return;
  slot.buffer = message.buffer;
  slot.generation = message.generation;
  bufferWaiters.get(message.slot)?.(message);
});

/** The buffer a frame's inputs sit in: the slot's current one, or the newer one on its way. */
function inputBuffer(frame: RunFrame): SharedArrayBuffer | Promise<SharedArrayBuffer> {
  const slot = slotBuffers[frame.slot];
  if (!slot) throw new Error(`no slot ${frame.slot}`);
  if (slot.generation >= frame.generation) return slot.buffer;
  return new Promise((resolve) => {
    bufferWaiters.set(frame.slot, (message) => {
      if (message.generation < frame.generation) return;
      bufferWaiters.delete(frame.slot);
      resolve(message.buffer);
    });
  });
}

async function run(frame: RunFrame): Promise<ReplyFrame> {
  const given = inputBuffer(frame);
  let buffer = given instanceof SharedArrayBuffer ? given : await given;
  const session = sessions[frame.model]?.[frame.subgraph];
  if (!session) throw new Error(`no session for model ${frame.model} subgraph ${frame.subgraph}`);
  const feeds: Record<string, ort.Tensor> = {};
  const plans = statePlans[frame.model];
  if (typeof plans === 'string') throw new Error(plans);
  const plan = plans?.[frame.subgraph];
  const store = stateStores[frame.model];
  const rows = frame.rows;
  (plan ? plan.batchInputs : session.inputNames).forEach((name, i) => {
    feeds[name] = toOrt(frame.inputs[i]!, buffer, i);
  });
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    if (plan && store) {
      if (!rows) throw new Error(`model ${frame.model} is stateful: a batch needs its sequence rows`);
      stateFeeds(plan, store, rows, feeds);
    }
    results = await session.run(feeds);
    if (plan && store && rows) keepStates(plan, store, rows, results);
  } finally {
    // An ending sequence's state goes whether its last step ran or failed.
    if (store && rows) for (const r of rows) if (r.end) store.delete(r.handle);
  }

  // Inputs are consumed: outputs go to the slot from offset 0, or to a bigger new buffer.
  const outs = (plan ? plan.batchOutputs : session.outputNames).map((name) => results[name]!);
  const strings = outs.map((t) => (t.type === 'string' ? (t.data as string[]).map((x) => Buffer.from(x, 'utf8')) : undefined));
  let needed = 0;
  outs.forEach((t, i) => {
    const packed = strings[i];
    needed += align8(packed ? packedStringBytes(packed) : (t.data as ArrayBufferView).byteLength);
  });
  const slot = slotBuffers[frame.slot]!;
  if (needed > buffer.byteLength) {
    buffer = new SharedArrayBuffer(Math.max(needed, buffer.byteLength * 2));
    slot.buffer = buffer;
    slot.generation++;
    port.postMessage({ type: 'slot-buffer', slot: frame.slot, generation: slot.generation, buffer } satisfies SlotBufferMessage);
  }
  let offset = 0;
  const outputs: TensorRef[] = outs.map((t, i) => {
    const dims = [...t.dims];
    const packed = strings[i];
    if (packed) {
      const ref = { dtype: 'string' as const, dims, offset, length: packed.length };
      offset += align8(packStrings(buffer, offset, packed));
      return ref;
    }
    const dtype = dtypeFromOrt(t.type) as DType;
    if (!isNumericDType(dtype)) throw new Error(`unexpected output type ${t.type}`);
    const src = t.data as ArrayBufferView & { length: number };
    new Uint8Array(buffer, offset, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    const ref = { dtype, dims, offset, length: src.length };
    offset += align8(src.byteLength);
    return ref;
  });
  for (const t of Object.values(results)) t.dispose();
  return { id: frame.id, generation: slot.generation, outputs };
}

/** Posts a reply, waiting (blocked) while the reply mailbox is full. */
function answer(reply: ReplyFrame): void {
  const { bytes, write } = encodeReplyFrame(reply);
  while (!replies.post(bytes, write)) replies.sleepForRoom(bytes, IDLE_WAIT_MS);
}

/** `drain` calls waiting for a batch to be answered. */
const drains: { lastRunId: number; resolve: () => void }[] = [];
let stopRequested = false;
let pumping = false;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Takes and runs batches, in mailbox order, until `stop` finds the mailbox empty. */
async function pump(): Promise<void> {
  pumping = true;
  for (;;) {
    const frame = requests.take(readRunFrame);
    if (frame) {
      running = 1;
      let reply: ReplyFrame;
      try {
        reply = await run(frame);
        batchesRun++;
      } catch (err) {
        batchesFailed++;
        reply = { id: frame.id, error: err instanceof Error ? err.message : String(err) };
      }
      running = 0;
      answer(reply);
      lastAnsweredId = frame.id;
      if (drains.length > 0) {
        for (const d of drains.filter((d) => d.lastRunId <= lastAnsweredId)) d.resolve();
        drains.splice(0, drains.length, ...drains.filter((d) => d.lastRunId > lastAnsweredId));
      }
      continue;
    }
    if (stopRequested) break;
    if (requests.sleep(SPIN_MICROS, IDLE_WAIT_MS) !== 'frame') {
      // Two turns: control handlers run in the first, what they scheduled with setImmediate
      // (crash) in the second, before the next sleep.
      await yieldToEventLoop();
      await yieldToEventLoop();
    }
  }
  await exit();
}

async function exit(): Promise<never> {
  for (const subs of sessions) for (const s of subs) await s.release().catch(() => undefined);
  process.exit(0);
}

let loading: Promise<LoadReply> | undefined;

const control = {
  load: () =>
    (loading ??= load().then((reply) => {
      void pump();
      return reply;
    })),
  health: () => ({ phase, queuedBatches: running + requests.size }),
  stats: () => ({
    batchesRun,
    batchesFailed,
    heapUsedBytes: getHeapStatistics().used_heap_size,
    uptimeMs: performance.now() - startedAt,
    sequences: stateStores.reduce((n, s) => n + (s?.size ?? 0), 0),
  }),
  dropSequences(model: number, handles: readonly number[]): number {
    const store = stateStores[model];
    let dropped = 0;
    for (const h of handles) if (store?.delete(h)) dropped++;
    return dropped;
  },
  drain(lastRunId: number): Promise<void> {
    if (lastRunId <= lastAnsweredId) return Promise.resolve();
    return new Promise<void>((resolve) => drains.push({ lastRunId, resolve }));
  },
  stop(): Promise<void> {
    // After the batches in the mailbox, never inside one: the pump ends once it is empty.
    phase = 'stopping';
    stopRequested = true;
    if (!pumping) void exit();
    return new Promise<void>(() => {}); // the thread's exit answers
  },
  crash(): void {
    // After the reply is posted, as an uncaught error of this thread (what a real crash is).
    setImmediate(() => {
      throw new Error('device actor crashed on request (fault injection)');
    });
  },
} satisfies DeviceControl;

Comlink.expose(control, nodeEndpoint(init.control));
