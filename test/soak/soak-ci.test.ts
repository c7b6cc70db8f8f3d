// The soak's 60-second version (perf/soak/run.ts --duration 60s): `actorserve serve` with the
// bundled add and resnet servables under REST + gRPC closed loops with good, bad and cancelled
// requests. Every check of the script must pass: memory flat after warm-up, only intended
// outcomes, p99 stable, the server up throughout and exiting 0 after SIGTERM.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ROOT } from '../helpers/fixtures.js';
import { runSoak } from '../helpers/soak.js';

const DURATION_S = 60;
// server start (up to 3 min on a loaded machine, models generated on first use), the load,
// the drain: the script bounds each; this bounds the whole.
const KILL_AFTER_MS = (DURATION_S + 240) * 1000;
t.setTimeout(KILL_AFTER_MS + 30_000);

const dir = path.join(ROOT, 'test', '.tmp', `soak-ci-${process.pid}`);
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test(`a ${DURATION_S} s soak passes its checks`, async (t) => {
  const report = path.join(dir, 'soak-report.md');
  const { code, summary, log } = await runSoak(['--duration', `${DURATION_S}s`, '--report', report], KILL_AFTER_MS);
  if (!summary) t.fail(`no JSON summary (exit ${code}); log:\n${log.slice(-4000)}`);
  if (!summary) return;
  for (const c of summary.checks) t.ok(c.ok, `${c.name}: ${c.value} (${c.limit})`);
  t.equal(summary.passed, true, 'the summary says passed');
  t.equal(code, 0, 'the script exits 0');

  // the mix really ran: both protocols, every class, each kind with its intended outcomes only
  t.same(new Set(summary.kinds.map((k) => k.protocol)), new Set(['rest', 'grpc']));
  t.same(new Set(summary.kinds.map((k) => k.class)), new Set(['good', 'bad', 'cancelled']));
  for (const k of summary.kinds) {
    const sent = Object.values(k.counts).reduce((a, b) => a + b, 0);
    t.ok(sent > 0, `${k.id} was sent (${sent})`);
    t.same(Object.keys(k.counts).filter((o) => !k.expected.includes(o)), [], `${k.id}: only ${k.expected.join(', ')}`);
  }
  t.ok(Number.isFinite(summary.memory.rssSlopeMbPerMin), `RSS slope ${summary.memory.rssSlopeMbPerMin} MB/min`);
  t.ok(summary.samples.length >= 20, `${summary.samples.length} samples of /metrics`);
  // the server saw the cancellations and deadlines as such
  t.ok((summary.serverSide.failuresByCode['E_CANCELLED'] ?? 0) > 0, 'the server counted cancelled requests');
  t.ok((summary.serverSide.failuresByCode['E_INTERNAL'] ?? 0) === 0, 'no internal error on the server');

  t.ok(existsSync(path.join(dir, 'soak.svg')), 'the plot was written');
  t.match(readFileSync(report, 'utf8'), /Verdict: PASSED/);
});
