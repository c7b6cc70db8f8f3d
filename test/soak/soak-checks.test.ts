// The soak's verdict functions (perf/soak/checks.ts) on synthetic samples: the memory check
// must fail a leak of 1 MB/s at the CI run's limit even under saw-tooth noise and pass a flat
// noisy series; an outcome not intended for its kind, an unsent kind, a p99 that grew past
// its limit, handles left open and a server that died each fail.
import t from 'tap';
import { handlesCheck, memoryCheck, outcomeChecks, p99Check, serverCheck, slope } from '../../dist/perf/soak/checks.js';

const CI_LIMIT_MB_PER_MIN = 45; // perf/soak/run.ts: the default below 5 minutes
const THRESHOLDS = { maxSlopeMbPerMin: CI_LIMIT_MB_PER_MIN, p99Ratio: 3, p99SlackMs: 50, p99MinSamples: 100 };

/** A 60 s run sampled every `every` s: base + leak + a GC-like saw-tooth of `noiseMb` every 7 s. */
function series(leakMbPerS: number, noiseMb: number, every = 1) {
  const out: { t: number; mb: number }[] = [];
  for (let s = 0; s <= 60; s += every) out.push({ t: s, mb: 300 + leakMbPerS * s + noiseMb * ((s % 7) / 7) });
  return out;
}

t.test('slope is the least-squares slope', async (t) => {
  t.equal(slope([{ t: 0, y: 1 }, { t: 1, y: 3 }, { t: 2, y: 5 }]), 2);
  t.equal(slope([{ t: 0, y: 1 }, { t: 1, y: 2 }, { t: 2, y: 1 }, { t: 3, y: 2 }]), 0.2);
  t.ok(Number.isNaN(slope([{ t: 0, y: 1 }])), 'one point has no slope');
});

t.test('memory: a 1 MB/s leak fails the CI limit, flat memory with saw-tooth noise passes', async (t) => {
  const leak = memoryCheck('rss', series(1, 8), 12, CI_LIMIT_MB_PER_MIN);
  t.notOk(leak.ok, leak.value);
  t.ok(leak.slopeMbPerMin > 55 && leak.slopeMbPerMin < 65, `slope ${leak.slopeMbPerMin} MB/min`);
  const flat = memoryCheck('rss', series(0, 8), 12, CI_LIMIT_MB_PER_MIN);
  t.ok(flat.ok, flat.value);
  t.ok(Math.abs(flat.slopeMbPerMin) < CI_LIMIT_MB_PER_MIN / 2, `slope ${flat.slopeMbPerMin} MB/min`);
  // warm-up growth is not judged: a steep climb that stops at 12 s passes
  const warm = series(0, 4).map((s) => ({ t: s.t, mb: s.mb + 5 * Math.min(s.t, 12) }));
  t.ok(memoryCheck('rss', warm, 12, CI_LIMIT_MB_PER_MIN).ok);
  t.notOk(memoryCheck('rss', series(0, 0).slice(0, 13), 12, CI_LIMIT_MB_PER_MIN).ok, 'fewer than 3 samples after warm-up cannot pass');
});

t.test('outcomes: only intended ones, every kind sent', async (t) => {
  const good = outcomeChecks([
    { id: 'a', expected: ['ok'], counts: new Map([['ok', 10]]) },
    { id: 'b', expected: ['ok', 'HTTP 504'], counts: new Map([['ok', 1], ['HTTP 504', 9]]) },
  ]);
  t.ok(good.every((c) => c.ok));
  const bad = outcomeChecks([
    { id: 'a', expected: ['ok'], counts: new Map([['ok', 10], ['HTTP 500', 1]]) },
    { id: 'b', expected: ['HTTP 400'], counts: new Map() },
  ]);
  t.notOk(bad[0]!.ok);
  t.match(bad[0]!.value, /a: HTTP 500 × 1/);
  t.notOk(bad[1]!.ok);
  t.match(bad[1]!.value, /never sent: b/);
});

t.test('p99: the last window within ratio or slack of the first', async (t) => {
  const pair = (first: number, last: number, n = 500) => ({ id: 'rest-add', first: { p99Ms: first, n }, last: { p99Ms: last, n } });
  t.ok(p99Check(pair(10, 29), THRESHOLDS).ok, '2.9× passes');
  t.ok(p99Check(pair(5, 54), THRESHOLDS).ok, 'within 50 ms of a small p99 passes');
  t.notOk(p99Check(pair(10, 61), THRESHOLDS).ok, '6× and 51 ms more fails');
  t.notOk(p99Check(pair(100, 301), THRESHOLDS).ok, 'over 3× fails');
  t.ok(p99Check(pair(10, 1000, 50), THRESHOLDS).ok, 'too few samples: shown, not judged');
});

t.test('server: every scrape answered and exit 0', async (t) => {
  t.ok(serverCheck([], 30, { code: 0, signal: null, diedEarly: false }).ok);
  t.notOk(serverCheck([], 30, { code: null, signal: 'SIGKILL', diedEarly: true }).ok);
  t.notOk(serverCheck([], 30, { code: 1, signal: null, diedEarly: false }).ok);
  t.notOk(serverCheck(['t=3 s: ECONNREFUSED'], 30, { code: 0, signal: null, diedEarly: false }).ok);
});

t.test('handles: back to the idle count after the load', async (t) => {
  t.ok(handlesCheck(7, 7, 8).ok);
  t.ok(handlesCheck(7, 15, 8).ok);
  t.notOk(handlesCheck(7, 16, 8).ok, 'more than the slack left open fails');
  t.notOk(handlesCheck(7, NaN, 8).ok, 'no sample after the load fails');
});
