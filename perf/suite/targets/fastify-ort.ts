/**
 * perf suite baseline: the plain way to serve these models from Node — Fastify (its JSON body
 * parser and serializer) with onnxruntime-node sessions on the main thread, one
 * `session.run` per request (its instances as one batch, no batching across requests), the
 * same MindSpore-style REST routes and bodies as actorserve, the same session options as
 * actorserve's device actors (intra-op threads, sequential, full graph optimisation), and for
 * `resnet` the same preprocessing (sharp decode + resize + normalise, top-1 label).
 *
 *   node dist/perf/suite/targets/fastify-ort.js --add FILE --mlp FILE --resnet FILE [--intra-op-threads 1]
 *
 * Prints `READY {"rest": "127.0.0.1:P"}`; SIGTERM stops it.
 */
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';
import { MODEL_ARGS, baselineSessionOptions } from './session-options.js';
import sharp from 'sharp';

const { values } = parseArgs({
  options: {
    ...MODEL_ARGS,
  },
});
const sessionOptions = baselineSessionOptions(Number(values['intra-op-threads']));
const sessions = {
  add: await ort.InferenceSession.create(values.add!, sessionOptions),
  mlp: await ort.InferenceSession.create(values.mlp!, sessionOptions),
  resnet: await ort.InferenceSession.create(values.resnet!, sessionOptions),
};

class BadRequest extends Error {}

/** Nested number lists → flat values (appended to `out`). */
function flatten(v: unknown, out: number[]): void {
  if (Array.isArray(v)) for (const e of v) flatten(e, out);
  else if (typeof v === 'number') out.push(v);
  else throw new BadRequest('inputs must be nested lists of numbers');
}

function batchOf(instances: Record<string, unknown>[], name: string, perInstance: number): Float32Array {
  const flat: number[] = [];
  for (const inst of instances) {
    const before = flat.length;
    flatten(inst[name], flat);
    if (flat.length - before !== perInstance) throw new BadRequest(`input '${name}' must hold ${perInstance} numbers per instance`);
  }
  return Float32Array.from(flat);
}

const SIDE = 224;
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

async function preprocess(image: unknown, into: Float32Array, offset: number): Promise<void> {
  const b64 = (image as { b64?: unknown } | null)?.b64;
  if (typeof b64 !== 'string') throw new BadRequest('image must be {"b64": ...}');
  const rgb = await sharp(Buffer.from(b64, 'base64')).removeAlpha().resize(SIDE, SIDE, { fit: 'fill' }).toColourspace('srgb').raw().toBuffer();
  const plane = SIDE * SIDE;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) into[offset + c * plane + i] = (rgb[i * 3 + c]! / 255 - MEAN[c]!) / STD[c]!;
  }
}

type Handler = (instances: Record<string, unknown>[]) => Promise<Record<string, unknown>[]>;

const handlers: Record<string, Handler> = {
  'add:add_common': async (instances) => {
    const n = instances.length;
    const out = await sessions.add.run({
      x1: new ort.Tensor('float32', batchOf(instances, 'x1', 4), [n, 2, 2]),
      x2: new ort.Tensor('float32', batchOf(instances, 'x2', 4), [n, 2, 2]),
    });
    const y = out['y']!.data as Float32Array;
    return instances.map((_, i) => ({ y: [[y[i * 4], y[i * 4 + 1]], [y[i * 4 + 2], y[i * 4 + 3]]] }));
  },
  'mlp:predict': async (instances) => {
    const n = instances.length;
    const out = await sessions.mlp.run({ x: new ort.Tensor('float32', batchOf(instances, 'x', 1024), [n, 1024]) });
    const y = out['y']!.data as Float32Array;
    return instances.map((_, i) => ({ y: Array.from(y.subarray(i * 1024, (i + 1) * 1024)) }));
  },
  'resnet:classify_top1': async (instances) => {
    const n = instances.length;
    const x = new Float32Array(n * 3 * SIDE * SIDE);
    await Promise.all(instances.map((inst, i) => preprocess(inst['image'], x, i * 3 * SIDE * SIDE)));
    const out = await sessions.resnet.run({ x: new ort.Tensor('float32', x, [n, 3, SIDE, SIDE]) });
    const p = out['y']!.data as Float32Array;
    return instances.map((_, i) => {
      let best = 0;
      for (let k = 1; k < 1000; k++) if (p[i * 1000 + k]! > p[i * 1000 + best]!) best = k;
      return { label: `class_${best}` };
    });
  },
};

const app = Fastify({ logger: false, bodyLimit: 100 * 1024 * 1024 });
app.post('/model/*', async (request, reply) => {
  const spec = (request.params as Record<string, string>)['*'] ?? '';
  const handler = handlers[spec];
  if (!handler) return reply.code(404).send({ error_msg: `unknown servable method '${spec}'` });
  const body = request.body as { instances?: unknown } | null;
  const list = Array.isArray(body?.instances) ? body.instances : body?.instances ? [body.instances] : [];
  if (list.length === 0) return reply.code(400).send({ error_msg: 'no instances' });
  try {
    return { instances: await handler(list as Record<string, unknown>[]) };
  } catch (err) {
    return reply.code(err instanceof BadRequest ? 400 : 500).send({ error_msg: (err as Error).message });
  }
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address ? address.port : 0;
process.stdout.write(`READY ${JSON.stringify({ rest: `127.0.0.1:${port}` })}\n`);
process.once('SIGTERM', () => {
  setTimeout(() => process.exit(0), 3000).unref();
  void app.close().finally(() => process.exit(0)); // exits either way
});
