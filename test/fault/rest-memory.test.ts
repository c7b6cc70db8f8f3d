// Memory stays flat under a long REST workload: the server's resident set (its troughs) grows
// by less than MAX_GROWTH_MB over many rounds of large replies (the per-thread reply buffer, the
// parser's pooled results) and of rejected requests (400, 404, 413). A positive control runs
// the same detector against a method that leaks on purpose and must see it (Triton's memory
// growth tests keep such a control, so a detector that can no longer fail is noticed).
// The server is `actorserve serve` in a child process; its RSS comes from /proc (Linux).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';
import { type HttpResult, request } from '../transports/rest/fixtures/rest.js';

const MAX_GROWTH_MB = 24;
const LEAK_KB_PER_REQUEST = 256;

const fx = servableFixture('rest-memory');
fx.config(
  'add',
  `${ADD_CONFIG}
// The positive control: every call keeps ${LEAK_KB_PER_REQUEST} KiB forever (touched, so it is resident).
const kept: Float64Array[] = [];
export function hoard(x: Tensor): Tensor {
  kept.push(new Float64Array(${LEAK_KB_PER_REQUEST * 128}).fill(kept.length));
  return x;
}
register.method('leak', { outputs: ['y'] }, (x1, x2) => register.addStage(model, [register.addStage(hoard, [x1]), x2]));
`,
);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));

let port = 0;
let pid = 0;

t.before(async () => {
  const server = runCli(['serve', '--servable-dir', fx.dir, '--servables', 'add', '--rest-address', '127.0.0.1:0', '--no-grpc', '--max-msg-mb', '1']);
  t.teardown(async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGINT');
      await server.exited;
    }
    fx.remove();
  });
  const [, listening] = await server.waitFor(REST_LISTENING);
  await server.waitFor(/serving add from/);
  port = Number(listening);
  pid = server.child.pid!;
});

function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error('no VmRSS');
  return Number(m[1]) / 1024;
}

const instances = (n: number, k: number) =>
  JSON.stringify({ instances: Array.from({ length: n }, (_, i) => ({ x1: [[i, k], [0.5, -1.25]], x2: [[1, 1], [k * 0.001, 3]] })) });
const BIG_BODY = instances(500, 7); // ~40 kB in, ~25 kB out
const post = (p: string, body: string | Buffer) => request({ port }, p, { body });

/**
 * A body declared over --max-msg-mb 1: the server answers 413 from the headers and closes, so
 * the body is never sent (a client writing it would get EPIPE instead of the answer).
 */
function oversize(): Promise<{ status: number | string }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write('POST /model/add:add_common HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2097152\r\n\r\n');
    });
    let head = '';
    sock.on('data', (d: Buffer) => (head += d.toString('latin1')));
    sock.on('error', (e) => resolve({ status: e.message }));
    sock.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? NaN) }));
  });
}

/** One round: large replies, then each kind of rejection; statuses checked as it goes. */
async function round(t: Test, extra?: () => Promise<void>): Promise<void> {
  const bad: string[] = [];
  const expect = async (what: string, r: Promise<Pick<HttpResult, 'status'> | { status: number | string }>, status: number) => {
    const res = await r.catch((e: Error) => ({ status: e.message }));
    if (res.status !== status) bad.push(`${what}: ${res.status}`);
  };
  for (let k = 0; k < 60; k += 6) {
    await Promise.all(Array.from({ length: 6 }, () => expect('large reply', post('/model/add:add_common', BIG_BODY), 200)));
  }
  for (let k = 0; k < 20; k++) {
    await Promise.all([
      expect('invalid JSON', post('/model/add:add_common', '{"instances": [1, 2'), 400),
      expect('unknown method', post('/model/add:nope', BIG_BODY), 404),
      expect('oversize body', oversize(), 413),
    ]);
  }
  await extra?.();
  t.same(bad, [], 'every request got its expected status');
}

/**
 * Runs `rounds` rounds, sampling RSS after each, and returns the trough of the last three. The
 * RSS of a busy Node process is a sawtooth (here 30-50 MB between neighbouring rounds, as V8
 * grows and shrinks its heap, with a period of about two rounds), so phases are compared by
 * their final troughs, which a leak lifts and the sawtooth does not.
 */
async function phaseTroughMb(t: Test, rounds: number, extra?: () => Promise<void>): Promise<{ trough: number; curve: string }> {
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await round(t, extra);
    samples.push(rssMb());
  }
  return { trough: Math.min(...samples.slice(-3)), curve: samples.map((x) => x.toFixed(0)).join(' ') };
}

t.test('RSS stays flat over rounds of large replies and rejected requests', async (t) => {
  await phaseTroughMb(t, 4); // warm-up: buffers, pools and V8's heap sizing reach their steady state
  const early = await phaseTroughMb(t, 6);
  const late = await phaseTroughMb(t, 6);
  const growth = late.trough - early.trough;
  t.comment(`RSS after each round: ${early.curve} | ${late.curve} MB; trough ${early.trough.toFixed(1)} -> ${late.trough.toFixed(1)} MB`);
  t.ok(growth < MAX_GROWTH_MB, `grew ${growth.toFixed(1)} MB over 6 rounds, under ${MAX_GROWTH_MB} MB`);
});

t.test('positive control: the same detector sees a method that leaks', async (t) => {
  const leakSeed = instances(1, 1);
  const leakFailures: string[] = [];
  const leak = async () => {
    for (let k = 0; k < 80; k += 10) {
      const replies = await Promise.all(Array.from({ length: 10 }, () => post('/model/add:leak', leakSeed)));
      for (const r of replies) if (r.status !== 200) leakFailures.push(`${r.status} ${r.text.slice(0, 200)}`);
    }
  };
  const early = await phaseTroughMb(t, 6);
  const late = await phaseTroughMb(t, 6, leak);
  t.same(leakFailures.slice(0, 3), [], 'the leaking method answered every call');
  const growth = late.trough - early.trough;
  t.comment(`RSS after each round: ${early.curve} | ${late.curve} MB, ${(6 * 80 * LEAK_KB_PER_REQUEST) / 1024} MB leaked in the second phase`);
  t.ok(growth >= MAX_GROWTH_MB, `grew ${growth.toFixed(1)} MB, at least ${MAX_GROWTH_MB} MB`);
});
