// Unix socket files of both transports: owner-only permissions, removed on stop, a stale file
// from a crashed run does not block a restart.
import t from 'tap';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG, servableFixture } from '../helpers/fixtures.js';

const fx = servableFixture('sockets');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

for (const transport of ['rest', 'grpc'] as const) {
  t.test(`${transport}: socket file is 0600, removed on stop, and a stale one is replaced`, async (t) => {
    // short paths: sun_path holds 107 bytes
    const dir = path.join('/tmp', `as-sock-${process.pid}-${transport}`);
    mkdirSync(dir, { recursive: true });
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const sock = path.join(dir, 's.sock');
    // a stale socket file: a server killed with SIGKILL leaves its socket file behind
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => console.log('up'))`]);
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    t.ok(existsSync(sock), 'a stale socket file is present');

    const engine = new ServingServer();
    engine.log = () => {};
    await engine.startServables(new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'add' }));
    if (transport === 'rest') await engine.startRestfulServer(`unix:${sock}`);
    else await engine.startGrpcServer(`unix:${sock}`);
    t.equal(statSync(sock).mode & 0o777, 0o600, 'owner-only permissions');
    await engine.stop();
    t.notOk(existsSync(sock), 'removed on stop');
  });
}
