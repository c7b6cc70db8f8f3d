// `actorserve infer` (runInferCommand) against a real server, and the .npy reader it uses.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { startGrpcServer, type GrpcServer } from '../../../dist/transports/grpc/server.js';
import { runInferCommand } from '../../../dist/transports/grpc/infer-cli.js';
import { readNpy, writeNpy } from '../../../dist/engine/npy.js';
import { type EngineFixture, startEngine } from './fixtures/engine.js';

let fx: EngineFixture;
let server: GrpcServer;
t.before(async () => {
  fx = await startEngine('grpc-cli');
  server = await startGrpcServer(fx.engine, '127.0.0.1:0');
});
t.teardown(async () => {
  await server?.close();
  await fx?.stop();
});

async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runInferCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr, json: stdout.startsWith('{') ? (JSON.parse(stdout) as unknown) : undefined };
}

t.test('.npy files: every supported dtype reads back', async (t) => {
  const arrays = [
    { dtype: 'float32', shape: [2, 2], data: Float32Array.of(1.5, -2, 3, 4) },
    { dtype: 'float64', shape: [3], data: Float64Array.of(Math.E, 0, -1e300) },
    { dtype: 'int32', shape: [1, 3], data: Int32Array.of(-1, 0, 2 ** 31 - 1) },
    { dtype: 'int64', shape: [2], data: BigInt64Array.of(-(2n ** 63n), 5n) },
    { dtype: 'uint8', shape: [4], data: Uint8Array.of(0, 1, 254, 255) },
    { dtype: 'bool', shape: [2], data: Uint8Array.of(1, 0) },
    { dtype: 'float16', shape: [], data: Uint16Array.of(0x3c00) },
    { dtype: 'uint16', shape: [0, 3], data: new Uint16Array(0) },
  ] as const;
  for (const a of arrays) {
    const back = readNpy(writeNpy(a));
    t.equal(back.dtype, a.dtype, a.dtype);
    t.same(back.shape, a.shape, `${a.dtype} shape`);
    t.same(Array.from(back.data as ArrayLike<unknown>), Array.from(a.data as ArrayLike<unknown>), `${a.dtype} data`);
  }
  // a version 2.0 header, as numpy writes for very long headers
  const header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }".padEnd(52, ' ') + '\n';
  const v2 = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, header.length, 0, 0, 0]), Buffer.from(header), Buffer.from(Int32Array.of(7, -7).buffer)]);
  t.same([...(readNpy(v2).data as Int32Array)], [7, -7], 'format 2.0');
  const v1 = writeNpy({ dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) });
  const bad: [string, Buffer, RegExp][] = [
    ['not npy', Buffer.from('hello world!'), /no \\x93NUMPY magic/],
    ['fortran order', Buffer.from(v1.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "), 'latin1'), /Fortran-order/],
    ['big-endian', Buffer.from(v1.toString('latin1').replace("'<f4'", "'>f4'"), 'latin1'), /dtype '>f4' is not supported/],
    ['unicode', Buffer.from(v1.toString('latin1').replace("'<f4'", "'<U1'"), 'latin1'), /not supported/],
    ['truncated data', v1.subarray(0, v1.length - 2), /needs 8/],
  ];
  for (const [name, bytes, message] of bad) t.throws(() => readNpy(bytes), { code: 'E_INVALID_ARGUMENT', message }, name);
});

t.test('infer with .npy and JSON inputs prints the outputs as JSON', async (t) => {
  const x1 = path.join(fx.fx.dir, 'x1.npy');
  writeFileSync(x1, writeNpy({ dtype: 'float32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }));
  const r = await run(server.address, 'add', 'add_common', '--input', `x1=@${x1}`, '--input', 'x2=[[0.5, 1], [1, 1]]', '--version', '1');
  t.equal(r.code, 0, r.stderr);
  t.same(r.json, { instances: [{ y: [[1.5, 3], [4, 5]] }] });
  const typed = await run(server.address, 'add', 'add_common', '-i', `x1=@${x1}`, '-i', 'x2:float32=[[1, 1], [1, 1]]', '--timeout-ms', '5000');
  t.same(typed.json, { instances: [{ y: [[0, 1], [2, 3]] }] }, 'NAME:DTYPE=JSON, version 0 = newest (x1 - x2)');
  t.equal(typed.code, 0);
});

t.test('infer: every kind of JSON value and file', async (t) => {
  const blob = path.join(fx.fx.dir, 'blob.bin');
  writeFileSync(blob, Buffer.from([1, 2, 3]));
  const i64 = path.join(fx.fx.dir, 'i64.npy');
  writeFileSync(i64, writeNpy({ dtype: 'int64', shape: [2], data: BigInt64Array.of(2n ** 60n, -1n) }));
  const cases: [string, unknown][] = [
    ['x="héllo"', 'héllo'],
    ['x=["a","b"]', ['a', 'b']],
    ['x=true', true],
    ['x=[[1,2],[3,4]]', [[1, 2], [3, 4]]],
    ['x=[1e2]', [100]],
    ['x:float16=[0.5, 65504]', [0.5, 65500]], // as REST writes float16: the shortest text that reads back as 65504
    ['x:int64=[-3]', [-3]],
    ['x={"dtype":"uint8","shape":[2],"data":[255,0]}', [255, 0]],
    [`x=@${blob}`, { b64: 'AQID' }],
    [`x=@${i64}`, ['1152921504606846976', -1]],
  ];
  for (const [input, y] of cases) {
    const r = await run(server.address, 'echo', 'echo', '--input', input);
    t.equal(r.code, 0, `${input}: ${r.stderr}`);
    t.same(r.json, { instances: [{ y }] }, input);
  }
  const f32 = await run(server.address, 'echo', 'echo', '--input', 'x=[1.0, 2]');
  t.same(f32.json, { instances: [{ y: [1, 2] }] });
});

t.test('infer: untyped JSON integers are sent in the dtype the server gives for the input (metadata RPC)', async (t) => {
  const r = await run(server.address, 'add', 'add_common', '--version', '1', '--input', 'x1=[[1,2],[3,4]]', '--input', 'x2=[[1,2],[3,4]]');
  t.equal(r.code, 0, r.stderr);
  t.same(r.json, { instances: [{ y: [[2, 4], [6, 8]] }] }, 'x1 and x2 went as float32, as the model takes');
  t.match(r.stdout, /\[\[2\.0,4\.0\],\[6\.0,8\.0\]\]/, 'and came back as float32');
});

t.test('infer: failures are JSON with a code and exit 1', async (t) => {
  const unknown = await run(server.address, 'nope', 'm', '--input', 'x=1');
  t.equal(unknown.code, 1);
  t.match(unknown.json, { error_code: 'E_UNKNOWN_SERVABLE', error_msg: /nope/ });
  const wrongType = await run(server.address, 'add', 'add_common', '--input', 'x1:int32=[[1,2],[3,4]]', '--input', 'x2=[[1,2],[3,4]]');
  t.equal(wrongType.code, 1);
  t.match(wrongType.json, { error_code: 'E_INVALID_DTYPE', error_msg: /takes float32, got int32/ }, 'an explicit int32 into a float32 model');
  const down = await run('127.0.0.1:1', 'add', 'add_common', '--input', 'x1=1', '--timeout-ms', '2000');
  t.equal(down.code, 1);
  t.match(down.json, { error_code: /E_UNAVAILABLE|E_DEADLINE_EXCEEDED/ });
});

t.test('infer: usage errors exit 2 with their reason', async (t) => {
  const cases: [string[], RegExp][] = [
    [[server.address, 'add'], /expected <address> <servable> <method>, got 2 arguments/],
    [[server.address, 'add', 'm'], /at least one --input/],
    [[server.address, 'add', 'm', '--input', 'x1'], /is not NAME=VALUE/],
    [[server.address, 'add', 'm', '--input', 'x1=[1,'], /is not JSON/],
    [[server.address, 'add', 'm', '--input', 'x1=[[1],[2,3]]'], /ragged/],
    [[server.address, 'add', 'm', '--input', 'x1=[1,"a"]'], /mixes number and string/],
    [[server.address, 'add', 'm', '--input', 'x1:complex=[1]'], /unknown dtype 'complex'/],
    [[server.address, 'add', 'm', '--input', 'x1:int8=[300]'], /not an integer in the range of int8/],
    [[server.address, 'add', 'm', '--input', 'x1=@/nonexistent.npy'], /cannot read \/nonexistent.npy/],
    [[server.address, 'add', 'm', '--input', 'x=1', '--input', 'x=2'], /given twice/],
    [[server.address, 'add', 'm', '--input', 'x=1', '--version', '-1'], /--version must be an integer >= 0/],
    [[server.address, 'add', 'm', '--input', 'x=1', '--bogus'], /Unknown option '--bogus'/],
    [[server.address, 'add', 'm', '--input', 'x=1', '--timout-ms', '5'], /Unknown option '--timout-ms' \(did you mean '--timeout-ms'\?\)/],
    [[server.address, 'add', 'm', '--input', 'x=1', '--cert', '/c.pem'], /together/],
  ];
  for (const [argv, message] of cases) {
    const r = await run(...argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.stderr, message, argv.join(' '));
  }
  const help = await run('infer', '--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: actorserve infer <address> <servable> <method>/);
});

t.test('infer: a usage error is its reason and a pointer to --help, not the whole usage text', async (t) => {
  const r = await run(server.address, 'add', 'add_common', '--input', 'x1=[[1, 2], [3, 4]');
  t.equal(r.code, 2);
  t.match(r.stderr, /^actorserve infer: input 'x1': "\[\[1, 2\], \[3, 4\]" is not JSON: .+\nRun "actorserve infer --help" for usage\.\n$/);
  t.notMatch(r.stderr, /usage: actorserve infer/);
});

t.test('infer: the address forms bench reads (host:port, grpc://, unix:), and TLS schemes refused', async (t) => {
  const port = server.address.split(':').pop();
  const forms = [`grpc://127.0.0.1:${port}`, `http://127.0.0.1:${port}`, `localhost:${port}`];
  const socket = path.join(fx.fx.dir, 'infer.sock');
  const unixServer = await startGrpcServer(fx.engine, `unix:${socket}`);
  t.teardown(() => unixServer.close());
  forms.push(`unix:${socket}`, `unix://${socket}`);
  for (const address of forms) {
    const r = await run(address, 'echo', 'echo', '--input', 'x=[1]');
    t.equal(r.code, 0, `${address}: ${r.stdout}${r.stderr}`);
    t.same(r.json, { instances: [{ y: [1] }] }, address);
  }
  const tls = await run(`grpcs://127.0.0.1:${port}`, 'echo', 'echo', '--input', 'x=[1]');
  t.equal(tls.code, 2);
  t.match(tls.stderr, /TLS targets \(grpcs:\/\/\) are not read by infer: give host:port with --ca/);
});

t.test('infer: floats print as REST writes them, the shortest text that reads back to the same float', async (t) => {
  const r = await run(server.address, 'echo', 'echo', '--input', 'x:float32=[0.1, 2, 1e-7]');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '{"instances":[{"y":[0.1,2.0,1e-7]}]}\n');
  const rest = await fx.engine.startRestfulServer('127.0.0.1:0');
  t.teardown(() => rest.close());
  const viaRest = await fetch(`http://${rest.address}/model/echo:echo`, {
    method: 'POST',
    body: JSON.stringify({ instances: [{ x: { b64: Buffer.from(Float32Array.of(0.1, 2, 1e-7).buffer).toString('base64'), type: 'fp32', shape: [3] } }] }),
  });
  t.equal(r.stdout, `${await viaRest.text()}\n`, 'the same text as the REST reply');
});

t.test('infer pointed at a REST port says it speaks gRPC, without waiting for a timeout', async (t) => {
  const rest = await fx.engine.startRestfulServer('127.0.0.1:0');
  t.teardown(() => rest.close());
  const r = await run(rest.address, 'add', 'add_common', '--input', 'x1:float32=[[1, 2], [3, 4]]', '--input', 'x2:float32=[[1, 1], [1, 1]]');
  t.equal(r.code, 1);
  t.match(r.json, {
    error_code: 'E_UNAVAILABLE',
    error_msg: new RegExp(`^${rest.address.replace(/\./g, '\\.')} answers HTTP/1\\.1, not gRPC \\(is it a REST port\\?\\): infer speaks gRPC`),
  });
});
