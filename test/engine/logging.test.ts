// Structured logs (json and text), the access-log hook with request ids, debug channels.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { Logger } from '../../dist/engine/logger.js';
import { ServingServer } from '../../dist/server.js';
import type { RequestLogEntry } from '../../dist/facade/engine.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, ROOT, f32, servableFixture } from '../helpers/fixtures.js';

t.test('json format writes one object per line; level filters', async (t) => {
  const lines: string[] = [];
  const log = new Logger({ format: 'json', level: 'info', write: (l) => lines.push(l) });
  log.debug('hidden');
  log.info('served', { requestId: 'r1', ms: 1.5 });
  t.equal(lines.length, 1);
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(record, { level: 'info', msg: 'served', requestId: 'r1', ms: 1.5 });
  t.match(record.time, /^\d{4}-\d\d-\d\dT/);
});

t.test('text format is one readable line', async (t) => {
  const lines: string[] = [];
  new Logger({ format: 'text', write: (l) => lines.push(l) }).warn('slow request', { requestId: 'r2', note: 'two words' });
  t.match(lines[0], /^\S+ WARN {2}slow request requestId=r2 note="two words"$/);
});

t.test('every finished request reaches the access log with its request id', async (t) => {
  const fx = servableFixture('logging');
  fx.config('add', ADD_CONFIG);
  fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
  const engine = new ServingServer();
  engine.log = () => {};
  t.teardown(async () => {
    await engine.stop();
    fx.remove();
  });
  await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
  const entries: RequestLogEntry[] = [];
  engine.requestLog = (e) => entries.push(e);
  await engine.infer('add', 'add_common', [{ x1: f32([1, 1, 1, 1]), x2: f32([1, 1, 1, 1]) }], { requestId: 'abc', transport: 'rest' });
  await engine.infer('add', 'nope', [], { requestId: 'def' }).catch(() => undefined);
  await engine.infer('ghost', 'x', [{}], { requestId: 'ghi' }).catch(() => undefined);
  t.match(entries[0], { requestId: 'abc', servable: 'add', method: 'add_common', version: 1, transport: 'rest', instances: 1, code: undefined });
  t.match(entries[1], { requestId: 'def', code: 'E_UNKNOWN_METHOD' });
  t.match(entries[2], { requestId: 'ghi', servable: 'ghost', code: 'E_UNKNOWN_SERVABLE' });
});

t.test('NODE_DEBUG=actorserve-scheduler prints batch decisions', async (t) => {
  const script = `
    import { ServingServer } from './dist/server.js';
    import { ServableStartConfig } from './dist/engine/start-config.js';
    import { ensureExampleModels } from './dist/servables/generate-models.js';
    await ensureExampleModels('servables');
    const e = new ServingServer(); e.log = () => {};
    await e.startServables(new ServableStartConfig({ servableDirectory: 'servables', servableName: 'add' }));
    const x = { dtype: 'float32', shape: [2, 2], data: new Float32Array(4) };
    await e.infer('add', 'add_common', [{ x1: x, x2: x }]);
    await e.stop();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, NODE_DEBUG: 'actorserve-scheduler' }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /ACTORSERVE-SCHEDULER \d+: Model 'tensor_add.onnx': batch of 1 -> device 0/);
});
