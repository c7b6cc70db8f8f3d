// The soak's positive control: the same script against a server that leaks 8 MiB a second on
// purpose (an `add` servable whose config module keeps an 8 MiB array every second) must fail
// its memory check and exit non-zero, so a soak that can no longer see a leak is noticed.
import path from 'node:path';
import t from 'tap';
import { addModel } from '../../dist/servables/example-models.js';
import { ROOT, servableFixture } from '../helpers/fixtures.js';
import { runSoak } from '../helpers/soak.js';
import { readFileSync } from 'node:fs';

// Short (the suite's time budget): 20 s judged after 6 s of warm-up. RSS noise over such a
// window is ±30–90 MB/min; the leak is about 500 MB/min.
const DURATION_S = 26;
const KILL_AFTER_MS = (DURATION_S + 240) * 1000;
t.setTimeout(KILL_AFTER_MS + 30_000);

const fx = servableFixture('soak-leak');
t.teardown(() => fx.remove());
fx.config(
  'add',
  `import { isMainThread } from 'node:worker_threads';
${readFileSync(path.join(ROOT, 'servables', 'add', 'servable_config.ts'), 'utf8')}
// The leak: 8 MiB kept (and touched, so it is resident) every second, on the main thread only
// (stage workers import this module too).
const kept: Float64Array[] = [];
if (isMainThread) setInterval(() => kept.push(new Float64Array(1024 * 1024).fill(kept.length + 1)), 1000).unref();
`,
);
fx.model('add', 1, 'tensor_add.onnx', addModel({ batch: 'N' }));

t.test('a server that leaks 8 MiB/s fails the memory check', async (t) => {
  const { code, summary, log } = await runSoak(
    ['--duration', `${DURATION_S}s`, '--warmup', '6s', '--servable-dir', fx.dir, '--servables', 'add', '--report', path.join(fx.dir, 'report', 'soak-report.md')],
    KILL_AFTER_MS,
  );
  if (!summary) t.fail(`no JSON summary (exit ${code}); log:\n${log.slice(-4000)}`);
  if (!summary) return;
  t.equal(code, 1, 'the script exits 1');
  t.equal(summary.passed, false);
  const memory = summary.checks.find((c) => c.name === 'memory flat: RSS');
  t.equal(memory?.ok, false, `memory check: ${memory?.value}`);
  t.ok(summary.memory.rssSlopeMbPerMin >= 200, `RSS slope ${summary.memory.rssSlopeMbPerMin} MB/min (8 MiB/s ≈ 503 MB/min)`);
  // the rest of the run was healthy: the leak is what failed it
  const others = summary.checks.filter((c) => c !== memory && !c.ok);
  t.same(others.map((c) => `${c.name}: ${c.value}`), [], 'no other check failed');
});
