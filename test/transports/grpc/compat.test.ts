// Wire compatibility with MindSpore Serving: an independent client in Python (Debian's
// python3-grpcio and python3-protobuf) builds ms_service.proto's messages from their field
// numbers, calls /mindspore.serving.proto.MSService/Predict with raw bytes and decodes the
// replies itself. Over TCP and a unix socket. Never skipped: a machine without those Python
// modules fails this test with a message saying what to install.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { type EngineFixture, startEngine } from './fixtures/engine.js';

const PYTHON = '/usr/bin/python3'; // Debian's: the python3 on PATH may be a build without the Debian modules
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'ms_compat_client.py');
const INSTALL = 'install them with: apt-get install python3-grpcio python3-protobuf';

let fx: EngineFixture;
let tcp: GrpcServer;
let unix: GrpcServer;

t.before(async () => {
  fx = await startEngine('grpc-compat');
  tcp = await startGrpcServer(fx.engine, '127.0.0.1:0');
  unix = await startGrpcServer(fx.engine, `unix:${path.join(tmpdir(), `asgrpc-compat-${process.pid}-${Date.now()}.sock`)}`);
});
t.teardown(async () => {
  await tcp?.close();
  await unix?.close();
  await fx?.stop();
});

interface PyTensor {
  dtype: number;
  shape: number[];
  values: unknown;
}
interface PyReply {
  spec: { name: string; method: string; version: number };
  instances: Record<string, PyTensor>[];
  errors: { code: number; msg: string }[];
  rpc_error?: string;
}

function runPython(address: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // async: the server under test runs in this process and must keep serving
    execFile(PYTHON, [SCRIPT, address], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

for (const kind of ['tcp', 'unix'] as const) {
  t.test(`MindSpore wire protocol from Python (${kind})`, async (t) => {
    if (!existsSync(PYTHON)) {
      t.fail(`${PYTHON} is missing: the compatibility test needs Debian's python3 with python3-grpcio and python3-protobuf; ${INSTALL}`);
      return;
    }
    const run = await runPython(kind === 'tcp' ? tcp.address : unix.address);
    if (run.code === 3) {
      t.fail(`${PYTHON} lacks the grpc or protobuf module (${run.stderr.trim()}); ${INSTALL}`);
      return;
    }
    if (run.code !== 0) {
      t.fail(`the Python client failed (exit ${run.code}): ${run.stderr}`);
      return;
    }
    const r = JSON.parse(run.stdout) as Record<string, PyReply>;

    t.same(r['ok']!.errors, [], 'success: no error entries');
    t.same(r['ok']!.spec, { name: 'add', method: 'add_common', version: 0 }, 'servable_spec echoed, version 0 kept');
    t.same(
      r['ok']!.instances.map((i) => i['y']),
      [
        { dtype: 11, shape: [2, 2], values: [-9, -18, -27, -36] },
        { dtype: 11, shape: [2, 2], values: [-0.5, -0.5, -0.5, -0.5] },
      ],
      'two float32 [2, 2] results in order (version 0 = newest = version 2, x1 - x2)',
    );
    t.same(r['version']!.instances[0]!['y']!.values, [2, 2, 2, 2], 'explicit version 1 (x1 + x2)');
    t.equal(r['version']!.spec.version, 1);

    for (const name of ['unknown_servable', 'unknown_method', 'malformed_size', 'zero_instances']) {
      const rep = r[name]!;
      t.equal(rep.rpc_error, undefined, `${name}: gRPC status OK`);
      t.equal(rep.instances.length, 0, `${name}: no instances`);
      t.equal(rep.errors.length, 1, `${name}: exactly one error`);
      t.equal(rep.errors[0]!.code, 2, `${name}: INVALID_INPUTS`);
    }
    t.match(r['unknown_servable']!.errors[0]!.msg, /servable 'nope' is not loaded/);
    t.match(r['unknown_method']!.errors[0]!.msg, /no method "nope"/);
    t.match(r['malformed_size']!.errors[0]!.msg, /instance 1, input 'x1': data holds 12 bytes/);
    t.match(r['zero_instances']!.errors[0]!.msg, /no instances/);

    const mixed = r['mixed']!;
    t.equal(mixed.instances.length, 2, 'mixed: two instances');
    t.same(mixed.errors.map((e) => e.code), [0, 2], 'mixed: one error per instance, 0 for the success');
    t.same(mixed.instances[0]!['y']!.values, [0, 1, 2, 3], 'mixed: the good instance has its result (version 2: x1 - x2)');
    t.same(mixed.instances[1], {}, 'mixed: the failed instance is empty');

    t.same(r['string']!.instances[0]!['y'], { dtype: 13, shape: [1], values: ['héllo'] }, 'string in bytes_val');
    t.same(r['scalar']!.instances[0]!['y'], { dtype: 12, shape: [], values: [2.5] }, 'shape [] scalar');
    t.same(r['int64']!.instances[0]!['y'], { dtype: 8, shape: [3], values: [-(2 ** 62), 0, 2 ** 62] }, 'int64');
  });
}
