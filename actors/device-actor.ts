/**
 * Device actor: the worker-thread entry. Owns one ONNX Runtime session per model subgraph,
 * created inside this thread, and runs batches described by the supervisor. Inputs are read
 * from, and outputs written to, the slot's SharedArrayBuffer; only descriptors travel in
 * messages. Control calls (load, health, stats, drain, stop, crash) arrive through comlink on
 * the control port of the start-up data (see protocol.ts).
 */
import { readFile } from 'node:fs/promises';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import * as ort from 'onnxruntime-node';
import { type DType, type NumericDType, TYPED_ARRAY, dtypeFromOrt, isNumericDType } from '../engine/dtypes.js';
import { MISSING_KEY_MESSAGE, decryptModel, isEncryptedModel } from '../engine/model-crypto.js';
import {
  DEVICE_PROTOCOL_VERSION,
  type DeviceActorHealth,
  type DeviceControl,
  type DeviceThreadData,
  type GraphInfo,
  type LoadReply,
  type ResultMessage,
  type RunErrorMessage,
  type RunMessage,
  type TensorRef,
  type ToDevice,
  type ValueInfo,
  align8,
  protocolMismatch,
} from './protocol.js';

const init = workerData as DeviceThreadData;
if (!parentPort) throw new Error('device-actor.js is a worker thread entry');
const port = parentPort;
const startedAt = performance.now();
const sessions: ort.InferenceSession[][] = [];
const slotBuffers = new Map<number, SharedArrayBuffer>();
let phase: DeviceActorHealth['phase'] = 'loading';
let lastReceivedId = 0;
let queuedBatches = 0;
let batchesRun = 0;
let batchesFailed = 0;

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
  }
  phase = 'ready';
  return { protocolVersion: DEVICE_PROTOCOL_VERSION, graphs };
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
 * Batches run one at a time, in arrival order: `session.run` defers its work with
 * setImmediate, so a second batch must not start (and overwrite the staging buffers) before
 * the first one has finished.
 */
let chain: Promise<void> = Promise.resolve();

function toOrt(ref: TensorRef, buffer: SharedArrayBuffer, index: number): ort.Tensor {
  if ('strings' in ref) {
    return new ort.Tensor('string', ref.strings.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')), ref.dims);
  }
  const dtype = ref.dtype as NumericDType;
  const Ctor = TYPED_ARRAY[dtype];
  const bytes = ref.length * Ctor.BYTES_PER_ELEMENT;
  const local = stagingBuffer(index, bytes);
  new Uint8Array(local, 0, bytes).set(new Uint8Array(buffer, ref.offset, bytes));
  return new ort.Tensor(dtype as 'float32', new Ctor(local, 0, ref.length) as Float32Array, ref.dims);
}

async function run(msg: RunMessage): Promise<void> {
  if (msg.buffer) slotBuffers.set(msg.slot, msg.buffer);
  let buffer = slotBuffers.get(msg.slot)!;
  const session = sessions[msg.model]?.[msg.subgraph];
  if (!session) throw new Error(`no session for model ${msg.model} subgraph ${msg.subgraph}`);
  const feeds: Record<string, ort.Tensor> = {};
  session.inputNames.forEach((name, i) => {
    feeds[name] = toOrt(msg.inputs[i]!, buffer, i);
  });
  const results = await session.run(feeds);

  // Inputs are consumed: outputs go to the slot from offset 0, or to a bigger new buffer.
  const outs = session.outputNames.map((name) => results[name]!);
  let needed = 0;
  for (const t of outs) if (t.type !== 'string') needed += align8((t.data as ArrayBufferView).byteLength);
  let grown: SharedArrayBuffer | undefined;
  if (needed > buffer.byteLength) {
    grown = new SharedArrayBuffer(Math.max(needed, buffer.byteLength * 2));
    slotBuffers.set(msg.slot, grown);
    buffer = grown;
  }
  let offset = 0;
  const outputs: TensorRef[] = outs.map((t) => {
    const dims = [...t.dims];
    if (t.type === 'string') {
      return { dtype: 'string', dims, strings: (t.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
    }
    const dtype = dtypeFromOrt(t.type) as DType;
    if (!isNumericDType(dtype)) throw new Error(`unexpected output type ${t.type}`);
    const src = t.data as ArrayBufferView & { length: number };
    new Uint8Array(buffer, offset, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
    const ref = { dtype, dims, offset, length: src.length };
    offset += align8(src.byteLength);
    return ref;
  });
  for (const t of outs) t.dispose();
  port.postMessage(
    grown
      ? ({ type: 'result', id: msg.id, buffer: grown, outputs } satisfies ResultMessage)
      : ({ type: 'result', id: msg.id, outputs } satisfies ResultMessage),
  );
}

/** `drain` calls whose last batch has not arrived yet (the data port is not ordered with the control port). */
const drains: { lastRunId: number; resolve: (done: Promise<void>) => void }[] = [];

port.on('message', (batch: ToDevice) => {
  lastReceivedId = batch.id;
  queuedBatches++;
  chain = chain.then(() =>
    run(batch).then(
      () => {
        queuedBatches--;
        batchesRun++;
      },
      (err: unknown) => {
        queuedBatches--;
        batchesFailed++;
        port.postMessage({ type: 'run-error', id: batch.id, message: err instanceof Error ? err.message : String(err) } satisfies RunErrorMessage);
      },
    ),
  );
  if (drains.length > 0) {
    for (const d of drains.filter((d) => d.lastRunId <= batch.id)) d.resolve(chain);
    drains.splice(0, drains.length, ...drains.filter((d) => d.lastRunId > batch.id));
  }
});

let loading: Promise<LoadReply> | undefined;
let stopping: Promise<void> | undefined;

const control = {
  load: () => (loading ??= load()),
  health: () => ({ phase, queuedBatches }),
  stats: () => ({ batchesRun, batchesFailed, heapUsedBytes: getHeapStatistics().used_heap_size, uptimeMs: performance.now() - startedAt }),
  drain(lastRunId: number): Promise<void> {
    if (lastRunId <= lastReceivedId) return chain; // the chain holds every batch received
    return new Promise<void>((resolve) => drains.push({ lastRunId, resolve }));
  },
  stop(): Promise<void> {
    phase = 'stopping';
    // After the batches already in the mailbox, never inside one; batches arriving later
    // queue behind the exit and never run.
    stopping ??= chain = chain.then(async () => {
      for (const subs of sessions) for (const s of subs) await s.release().catch(() => undefined);
      process.exit(0);
    });
    return stopping;
  },
  crash(): void {
    // After the reply is posted, as an uncaught error of this thread (what a real crash is).
    setImmediate(() => {
      throw new Error('device actor crashed on request (fault injection)');
    });
  },
} satisfies DeviceControl;

Comlink.expose(control, nodeEndpoint(init.control));
