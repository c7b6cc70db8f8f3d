// Defaults that use the machine (issue 16 item 4): `actorserve serve` with the device plan
// (no --device-ids / --intra-op-threads) against the old defaults (--device-ids 0
// --intra-op-threads 1) and any other settings named, in one invocation, interleaved: each
// repeat starts each server in turn (one at a time: they would share the cores) and drives it
// with `actorserve bench` (wrk): the ResNet-shaped CNN at c=8, add at c=1 and c=64.
//
//   npm run build && node dist/perf/auto-devices.js [--repeats 3] [--seconds 8] [--report perf/out/auto-devices.md]
//
// Medians over repeats; the load average is taken before each cell (the machine may be shared).
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findProjectRoot } from '../servables/generate-models.js';
import { prepareSuite } from './suite/servables.js';

interface Settings {
  readonly id: string;
  readonly flags: readonly string[];
}
const SETTINGS: readonly Settings[] = [
  { id: 'old defaults (1 actor × 1 thread)', flags: ['--device-ids', '0', '--intra-op-threads', '1'] },
  { id: 'new defaults (device plan)', flags: [] },
  { id: '1 actor × 2 threads', flags: ['--device-ids', '0', '--intra-op-threads', '2'] },
];

interface Cell {
  readonly servable: string;
  readonly method: string;
  readonly concurrency: number;
}
const CELLS: readonly Cell[] = [
  { servable: 'resnet', method: 'classify_top1', concurrency: 8 },
  { servable: 'resnet', method: 'classify_top1', concurrency: 1 },
  { servable: 'add', method: 'add_common', concurrency: 1 },
  { servable: 'add', method: 'add_common', concurrency: 64 },
];

interface Level {
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  readonly errors: number;
  readonly serverCpuPerRequestUs?: number;
}
interface Sample extends Level {
  readonly load: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = findProjectRoot(here);
const bin = path.join(root, 'bin', 'actorserve.js');

/** Starts `serve`; resolves with its port, the plan lines it logged, and a stop function. */
async function serve(servableDir: string, flags: readonly string[]): Promise<{ port: string; pid: number; plans: string[]; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [bin, 'serve', '--servable-dir', servableDir, '--servables', 'add,resnet', '--no-grpc', '--rest-address', '127.0.0.1:0', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const until = Date.now() + 120_000;
  const listening = /RESTful server listening on http:\/\/127\.0\.0\.1:(\d+)/;
  for (;;) {
    if (listening.test(out)) break;
    if (child.exitCode !== null || Date.now() > until) throw new Error(`serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = listening.exec(out)!;
  const plans = out.split('\n').filter((l) => l.includes('started on devices')).map((l) => l.replace(/^.*INFO\s+/, ''));
  return {
    port: m[1]!,
    pid: child.pid!,
    plans,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function bench(port: string, pid: number, cell: Cell, input: string, seconds: number): Promise<Level> {
  const args = [bin, 'bench', `127.0.0.1:${port}`, '--servable', cell.servable, '--method', cell.method, '--input', input, '--concurrency', String(cell.concurrency)];
  args.push('--duration', `${seconds}s`, '--warmup', '1s', '--workers', '1', '--generator', 'wrk', '--server-pid', String(pid), '--json');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench exited ${code}: ${out}`));
      resolve((JSON.parse(out) as { levels: Level[] }).levels[0]!);
    });
  });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { repeats: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, report: { type: 'string' } } });
  const repeats = Number(values.repeats);
  const seconds = Number(values.seconds);
  const reportPath = path.resolve(root, values.report ?? path.join('perf', 'out', 'auto-devices.md'));
  const files = await prepareSuite(path.join(root, 'perf', 'out', 'auto'), root);
  const inputs: Record<string, string> = { resnet: files.inputs.resnet, add: files.inputs.add };
  const samples = new Map<string, Sample[]>();
  const plans = new Map<string, string[]>();
  const loadAtStart = os.loadavg();
  for (let rep = 0; rep < repeats; rep++) {
    for (let i = 0; i < SETTINGS.length; i++) {
      const s = SETTINGS[(i + rep) % SETTINGS.length]!; // the order rotates per repeat
      const server = await serve(files.servableDir, s.flags);
      plans.set(s.id, [...(plans.get(s.id) ?? []), `#${rep + 1}: ${server.plans.join('; ')}`]);
      try {
        for (const cell of CELLS) {
          const load = os.loadavg()[0]!;
          const r = await bench(server.port, server.pid, cell, inputs[cell.servable]!, seconds);
          const key = `${s.id}|${cell.servable} c=${cell.concurrency}`;
          samples.set(key, [...(samples.get(key) ?? []), { ...r, load }]);
          process.stderr.write(
            `#${rep + 1} ${s.id}, ${cell.servable} c=${cell.concurrency}: ${r.requestsPerSecond.toFixed(1)} req/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, ` +
              `p99 ${r.latencyMs.p99.toFixed(2)} ms, server ${r.serverCpuPerRequestUs?.toFixed(0) ?? '?'} µs/req, load ${load.toFixed(1)}\n`,
          );
        }
      } finally {
        await server.stop();
      }
    }
  }
  const rows = CELLS.flatMap((cell) =>
    SETTINGS.map((s) => {
      const xs = samples.get(`${s.id}|${cell.servable} c=${cell.concurrency}`) ?? [];
      const f = (pick: (x: Sample) => number, digits: number) => median(xs.map(pick)).toFixed(digits);
      const all = xs.map((x) => x.requestsPerSecond.toFixed(1)).join(' / ');
      return `| ${cell.servable} c=${cell.concurrency} | ${s.id} | ${f((x) => x.requestsPerSecond, 1)} (${all}) | ${f((x) => x.latencyMs.p50, 2)} | ${f((x) => x.latencyMs.p99, 2)} | ${f((x) => x.serverCpuPerRequestUs ?? NaN, 0)} | ${xs.reduce((a, x) => a + x.errors, 0)} | ${f((x) => x.load, 1)} |`;
    }),
  );
  const text =
    `# Device plan vs old defaults (perf/auto-devices.ts)\n\n` +
    `${new Date().toISOString()}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.availableParallelism()} cores, Node ${process.version}; ` +
    `load average at start ${loadAtStart.map((v) => v.toFixed(2)).join(' ')}; ${repeats} repeats, servers one at a time in rotating order, ` +
    `${seconds} s cells after 1 s warm-up, wrk with 1 thread; medians over repeats (each repeat's req/s in brackets).\n\n` +
    `What each setting started, per repeat (its startup log):\n\n${[...plans].map(([id, lines]) => `- ${id}:\n${lines.map((l) => `  - ${l}`).join('\n')}`).join('\n')}\n\n` +
    `| workload | settings | req/s | p50 ms | p99 ms | server CPU µs/req | errors | load avg (1 min) |\n|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`;
  await mkdir(path.dirname(reportPath), { recursive: true });
  await writeFile(reportPath, text);
  process.stdout.write(`${text}\nwrote ${path.relative(process.cwd(), reportPath)}\n`);
}

await main();
