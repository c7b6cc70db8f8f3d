// Option schemas (engine/option-schema.ts): one declaration per surface gives the checks, the
// defaults and the wording; every library surface refuses unknown keys with the closest known one.
import t from 'tap';
import {
  type OptionProblem,
  boolean,
  checkFileOptions,
  checkOptions,
  fileMessage,
  integer,
  invalidArgument,
  libraryMessage,
  list,
  map,
  number,
  object,
  oneOf,
  parseText,
  path,
  string,
} from '../../dist/engine/option-schema.js';
import { ServableStartConfig, ServingServer } from '../../dist/index.js';

const DEMO = {
  name: string({ required: true, doc: 'a name' }),
  ids: list(integer({ min: 0, doc: 'an id' }), { single: true, unique: true, nonEmpty: true, item: 'id', default: [0], doc: 'ids' }),
  size: number({ min: 0, exclusiveMin: true, max: 512, default: 100, doc: 'size' }),
  threads: integer({ min: 1, max: 256, doc: 'threads' }),
  mode: oneOf<'cpu' | 'cuda', string>()({ values: ['cpu', 'cuda'], aliases: { gpu: 'cuda' }, ignoreCase: true, nullable: 'as-absent', default: 'cpu', doc: 'mode' }),
  verbose: boolean({ doc: 'verbose' }),
  file: path({ doc: 'a file' }),
  tls: object({ cert: path({ required: true, doc: 'cert' }), verifyClient: boolean({ doc: 'mTLS' }) }, { doc: 'tls' }),
  models: map(object({ maxBatchSize: integer({ min: 1, doc: 'batch' }) }, { doc: 'model' }), { default: {}, doc: 'models' }),
  listener: object({ port: integer({ min: 0, default: 80, doc: 'port' }) }, { nullable: 'kept', default: {}, doc: 'null = off' }),
} as const;

/** The problem `checkOptions` reports for `input`, or undefined when it passes. */
function problemOf(input: unknown): OptionProblem | undefined {
  let problem: OptionProblem | undefined;
  try {
    checkOptions(DEMO, input, (p) => {
      problem = p;
      throw new Error('stop at the first problem');
    });
  } catch {
    // `problem` holds it
  }
  return problem;
}
const library = (input: unknown): string | undefined => {
  const p = problemOf(input);
  return p && libraryMessage('Demo options', p);
};

t.test('defaults are filled in and values normalised', async (t) => {
  const out = checkOptions(DEMO, { name: 'a', ids: 3, mode: 'GPU' }, invalidArgument('Demo options'));
  t.same(out, { name: 'a', ids: [3], size: 100, mode: 'cuda', models: {}, listener: { port: 80 } }, 'an object default is checked too');
  t.equal(checkOptions(DEMO, { name: 'a', mode: null }, invalidArgument('Demo options')).mode, 'cpu', "nullable 'as-absent': null = the default");
  t.equal(checkOptions(DEMO, { name: 'a', listener: null }, invalidArgument('Demo options')).listener, null, "nullable 'kept': null stays null");
  t.equal('threads' in out, false, 'a key with no default stays absent');
});

t.test('unknown keys are refused with the closest known key, at any depth', async (t) => {
  t.equal(library({ name: 'a', sise: 1 }), "Demo options: unknown option 'sise' (did you mean 'size'?)");
  t.equal(library({ name: 'a', SIZE: 1 }), "Demo options: unknown option 'SIZE' (did you mean 'size'?)", 'case differences count as close');
  t.equal(library({ name: 'a', zzzzzzzzzz: 1 }), 'Demo options: unknown option \'zzzzzzzzzz\' (known keys: name, ids, size, threads, mode, verbose, file, tls, models, listener)');
  t.equal(library({ name: 'a', tls: { cert: 'c', verifyClinet: true } }), "Demo options: tls has an unknown key 'verifyClinet' (did you mean 'verifyClient'?)");
  t.equal(library({ name: 'a', models: { 'm.onnx': { maxBatchSise: 2 } } }), "Demo options: models['m.onnx'] has an unknown key 'maxBatchSise' (did you mean 'maxBatchSize'?)");
  t.equal(library({ name: 'a', sise: undefined }), "Demo options: unknown option 'sise' (did you mean 'size'?)", 'even when its value is undefined');
});

t.test('each limit is worded from the field alone', async (t) => {
  const cases: [unknown, string][] = [
    [{}, 'Demo options: name is required'],
    [{ name: '' }, "Demo options: name must be a non-empty string, got ''"],
    [{ name: 'a', size: 0 }, 'Demo options: size must be a number in (0, 512], got 0'],
    [{ name: 'a', size: '5' }, "Demo options: size must be a number in (0, 512], got '5'"],
    [{ name: 'a', size: null }, 'Demo options: size must be a number in (0, 512], got null'],
    [{ name: 'a', threads: 1.5 }, 'Demo options: threads must be an integer in [1, 256], got 1.5'],
    [{ name: 'a', ids: [0, -1] }, 'Demo options: ids must be integers >= 0, got [0, -1]'],
    [{ name: 'a', ids: [1, 1] }, 'Demo options: ids repeats an id: 1, 1'],
    [{ name: 'a', ids: [] }, 'Demo options: ids must name at least one id'],
    [{ name: 'a', mode: 'tpu' }, "Demo options: mode 'tpu' is not supported; use 'cpu' or 'cuda'"],
    [{ name: 'a', mode: '' }, 'Demo options: mode must not be empty'],
    [{ name: 'a', verbose: 'yes' }, "Demo options: verbose must be true or false, got 'yes'"],
    [{ name: 'a', tls: {} }, 'Demo options: tls.cert is required'],
    [{ name: 'a', tls: [] }, 'Demo options: tls must be an object, got []'],
    [{ name: 'a', models: { m: { maxBatchSize: 0 } } }, "Demo options: models['m'].maxBatchSize must be an integer >= 1, got 0"],
  ];
  for (const [input, message] of cases) t.equal(library(input), message, JSON.stringify(input));
});

t.test('a file is worded by path and keeps absent keys absent; its paths are resolved', async (t) => {
  const fail = (p: OptionProblem): never => {
    throw new Error(fileMessage('config', p));
  };
  const out = checkFileOptions(DEMO, { name: 'a', file: 'k.key', tls: { cert: 'c.pem' } }, fail, (p) => `/base/${p}`);
  t.same(out, { name: 'a', file: '/base/k.key', tls: { cert: '/base/c.pem' } });
  t.throws(() => checkFileOptions(DEMO, { name: 'a', tls: { cert: 'c', verifyclient: 1 } }, fail, (p) => p), {
    message: "config.tls: unknown key 'verifyclient' (did you mean 'verifyClient'?)",
  });
  t.throws(() => checkFileOptions(DEMO, { name: 'a', ids: [0, -1] }, fail, (p) => p), { message: 'config.ids: must be integers >= 0, got [0, -1]' });
  t.throws(() => checkFileOptions(DEMO, { tls: { cert: 'c' } }, fail, (p) => p), { message: "config: missing required key 'name'" });
});

t.test('command-line text becomes the field kind, or stays text for the check to report', async (t) => {
  t.same(parseText(DEMO.ids, '0, 1'), [0, 1]);
  t.equal(parseText(DEMO.size, '2.5'), 2.5);
  t.equal(parseText(DEMO.size, 'soon'), 'soon');
  t.equal(parseText(DEMO.size, ''), '');
  t.equal(parseText(DEMO.mode, 'cuda'), 'cuda');
});

// ---------------------------------------------------------------------------------------------
// Every library surface refuses unknown keys (they used to be ignored silently).

const fx = { servableDirectory: '/nonexistent', servableName: 'add' };

t.test('ServableStartConfig refuses unknown keys', async (t) => {
  t.throws(() => new ServableStartConfig({ ...fx, maxQueuedRequest: 5 } as never), {
    code: 'E_INVALID_ARGUMENT',
    message: "ServableStartConfig: unknown option 'maxQueuedRequest' (did you mean 'maxQueuedRequests'?)",
  });
  t.throws(() => new ServableStartConfig({ ...fx, intraOpThreads: 0 }), { message: 'ServableStartConfig: intraOpThreads must be an integer in [1, 256], got 0' });
  const c = new ServableStartConfig(fx);
  t.same([c.deviceIds, c.versionNumber, c.deviceType, c.intraOpThreads, c.maxQueuedRequests, c.defaultDeadlineMs, c.batching], [undefined, 0, 'cpu', undefined, 10_000, 30_000, {}], 'device ids and threads absent: planned at start (engine/device-plan.ts)');
  t.same([new ServableStartConfig({ ...fx, deviceIds: null, intraOpThreads: null }).deviceIds], [undefined], 'null is absent (MindSpore None)');
  t.same({ ...new ServableStartConfig({ ...c, deviceIds: [1] }) }, { ...c, deviceIds: [1] }, 'a config spreads back into one (the facade merges configs so)');
});

t.test('startRestfulServer and startGrpcServer refuse unknown keys, before binding', async (t) => {
  const server = new ServingServer();
  server.log = () => undefined;
  t.teardown(() => server.stop());
  await t.rejects(server.startRestfulServer('127.0.0.1:0', { maxMsgMBSize: 5 } as never), {
    code: 'E_INVALID_ARGUMENT',
    message: "RESTful server options: unknown option 'maxMsgMBSize' (did you mean 'maxMsgMbSize'?)",
  });
  await t.rejects(server.startRestfulServer('127.0.0.1:0', { sslConfig: { certificate: 'c.pem', privateKey: 'k.pem', verifyClinet: true } } as never), {
    code: 'E_INVALID_ARGUMENT',
    message: "RESTful server options: sslConfig has an unknown key 'verifyClinet' (did you mean 'verifyClient'?)",
  });
  await t.rejects(server.startGrpcServer('127.0.0.1:0', { keepaliveTimeMS: 60_000 } as never), {
    code: 'E_INVALID_ARGUMENT',
    message: "gRPC server options: unknown option 'keepaliveTimeMS' (did you mean 'keepaliveTimeMs'?)",
  });
  await t.rejects(server.startGrpcServer('127.0.0.1:0', { maxMsgMbSize: 513 }), { message: 'gRPC server options: maxMsgMbSize must be a number in (0, 512], got 513' });
  await t.rejects(server.startRestfulServer('127.0.0.1:0', { maxMsgMbSize: 513 }), { message: 'RESTful server options: maxMsgMbSize must be a number in (0, 512], got 513' });
});
