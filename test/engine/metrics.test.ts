// Prometheus metrics move with traffic; histograms have buckets; gauges read live figures.
import t from 'tap';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { MetricsRegistry } from '../../dist/engine/metrics.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, f32, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('metrics');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
const engine = new ServingServer();
engine.log = () => {};
t.before(() => engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add', deviceIds: [0, 1] })));
t.teardown(async () => {
  await engine.stop();
  fx.remove();
});

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

t.test('counters and histograms move with traffic', async (t) => {
  const good = { x1: f32([1, 2, 3, 4]), x2: f32([1, 1, 1, 1]) };
  await Promise.all(Array.from({ length: 10 }, () => engine.infer('add', 'add_common', [good, good])));
  await engine.inferEach('add', 'add_common', [{ x1: f32([1, 2, 3, 4]) }], { transport: 'rest' });
  await engine.infer('nope', 'x', [good]).catch(() => undefined);
  const text = engine.metrics!.render();
  t.equal(value(text, 'actorserve_requests_total{servable="add",method="add_common",version="1",transport="engine"}'), 10);
  t.equal(value(text, 'actorserve_requests_total{servable="add",method="add_common",version="1",transport="rest"}'), 1);
  t.equal(value(text, 'actorserve_request_failures_total{servable="add",method="add_common",version="1",transport="rest",code="E_MISSING_INPUT"}'), 1);
  t.equal(
    value(text, 'actorserve_request_failures_total{servable="",method="",version="",transport="engine",code="E_UNKNOWN_SERVABLE"}'),
    1,
    'unknown names do not become label values',
  );
  t.notMatch(text, /servable="nope"/);
  t.equal(value(text, 'actorserve_request_duration_seconds_count{servable="add",method="add_common",transport="engine"}'), 10);
  t.match(text, /actorserve_request_duration_seconds_bucket\{servable="add",method="add_common",transport="engine",le="0.001"\} \d+/);
  t.equal(value(text, 'actorserve_request_duration_seconds_bucket{servable="add",method="add_common",transport="engine",le="+Inf"}'), 10);
  t.equal(value(text, `actorserve_batch_size_sum{servable="add",model="add.onnx"}`), 20, 'every instance counted once in batches');
  t.ok(value(text, `actorserve_inference_duration_seconds_count{servable="add",model="add.onnx"}`) >= 1);
  t.equal(value(text, `actorserve_queue_duration_seconds_count{servable="add",model="add.onnx"}`), 20);
  t.notMatch(text, /model="Model /, "the model label is the model's key, not a display string");
  t.equal(value(text, 'actorserve_inflight_requests{servable="add",version="1"}'), 0);
  t.equal(value(text, 'actorserve_device_actors_live{servable="add",version="1"}'), 2);
  t.equal(value(text, 'actorserve_device_actor_restarts_total{servable="add",version="1"}'), 0);
  t.match(text, /# TYPE actorserve_requests_total counter/);
  t.match(text, /# TYPE actorserve_request_duration_seconds histogram/);
  t.match(text, /# TYPE actorserve_queue_depth gauge/);
});

t.test('device actor restarts are counted', async (t) => {
  const rt = engine.runtime('add');
  await rt.deviceHandles()[0]!.kill();
  const until = Date.now() + 10_000;
  while (rt.stats.restarts < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(value(engine.metrics!.render(), 'actorserve_device_actor_restarts_total{servable="add",version="1"}'), 1);
});

t.test("process and runtime metrics have prom-client's names and plausible values", async (t) => {
  // garbage for the GC observer (~100 MB of short-lived objects: more than the young generation
  // holds, so scavenges happen whatever else the process allocated before), and a pause for the
  // event-loop monitor to sample
  let keep = 0;
  for (let i = 0; i < 2_000_000; i++) keep += [i, { i }].length;
  t.ok(keep > 0);
  await new Promise((r) => setTimeout(r, 100));
  const text = engine.metrics!.render();
  const cpu = value(text, 'process_cpu_seconds_total');
  t.ok(cpu > 0, 'CPU time is counted');
  t.ok(Math.abs(cpu - value(text, 'process_cpu_user_seconds_total') - value(text, 'process_cpu_system_seconds_total')) < 0.05, 'CPU total = user + system');
  const start = value(text, 'process_start_time_seconds');
  t.ok(start <= Date.now() / 1000 && start > Date.now() / 1000 - 3600, 'start time is in seconds since the epoch');
  t.ok(value(text, 'process_resident_memory_bytes') > 10 * 1024 * 1024, 'RSS in bytes');
  t.ok(value(text, 'nodejs_heap_size_used_bytes') <= value(text, 'nodejs_heap_size_total_bytes'));
  t.ok(value(text, 'nodejs_external_memory_bytes') > 0);
  t.ok(value(text, 'nodejs_active_resources_total') >= 1, 'the REST-less engine still holds its device actors');
  t.ok(value(text, 'nodejs_eventloop_lag_p99_seconds') > 0, 'the event-loop delay is sampled');
  t.ok(value(text, 'nodejs_eventloop_lag_p50_seconds') <= value(text, 'nodejs_eventloop_lag_p99_seconds'));
  t.ok(value(text, 'nodejs_gc_duration_seconds_count{kind="minor"}') >= 1, 'scavenges are observed');
  t.match(text, /# TYPE nodejs_gc_duration_seconds histogram/);
  t.match(text, /# TYPE process_cpu_seconds_total counter/);
  t.match(text, /# TYPE process_resident_memory_bytes gauge/);
  t.ok(new ServingServer().metrics!.render().includes('nodejs_gc_duration_seconds'), 'a second server in the process shares the monitors');
});

t.test('label values are escaped', async (t) => {
  const r = new MetricsRegistry();
  r.counter('x_total', 'help', ['a']).inc(['q"u\\o\nte']);
  t.match(r.render(), /x_total\{a="q\\"u\\\\o\\nte"\} 1/);
});
