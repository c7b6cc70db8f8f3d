// Thousands of idle connections against `actorserve serve` (a child process, its RSS from
// /proc): they cost the server little memory, it keeps answering, and uWS closes every one of
// them at its idle timeout (~10 s). With --max-connections, one over the limit gets 503.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';
import { rawExchange, requestBytes } from '../transports/rest/fixtures/raw-http.js';

const IDLE = 2000;
/** Measured: about 1 MiB for 3000 idle connections (uSockets keeps ~0.3 KiB each; the kernel's buffers are not in RSS). */
const MAX_GROWTH_MB = 24;
const ECHO = '/model/echo:echo';
const ECHO_BODY = '{"instances":[{"x":[1,2]}]}';

const fx = servableFixture('rest-idle');
fx.config('echo', `import { register } from 'actorserve';\nregister.method('echo', { outputs: ['y'] }, (x) => x);\n`);
t.teardown(() => fx.remove());

async function serve(flags: string[]): Promise<{ port: number; pid: number; stop: () => Promise<number | null> }> {
  const p = runCli(['serve', '--servable-dir', fx.dir, '--servables', 'echo', '--rest-address', '127.0.0.1:0', '--no-grpc', ...flags]);
  const [, port] = await p.waitFor(REST_LISTENING);
  await p.waitFor(/serving echo from/);
  return {
    port: Number(port),
    pid: p.child.pid!,
    stop: async () => {
      p.child.kill('SIGTERM');
      return p.exited;
    },
  };
}

const rssMb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

t.test(`${IDLE} idle connections: bounded memory, the server answers, uWS closes them all`, async (t) => {
  const server = await serve([]);
  t.teardown(() => server.stop());
  const before = rssMb(server.pid);
  let connected = 0;
  let closed = 0;
  let errors = 0;
  const sockets: net.Socket[] = [];
  const allClosed = new Promise<void>((resolve) => {
    for (let i = 0; i < IDLE; i++) {
      const s = net.connect(server.port, '127.0.0.1');
      s.on('connect', () => connected++);
      s.on('data', () => undefined); // read, so the server's FIN is seen
      s.on('error', () => errors++);
      s.on('close', () => {
        closed++;
        if (closed === IDLE) resolve();
      });
      sockets.push(s);
    }
  });
  for (let i = 0; i < 100 && connected < IDLE; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(connected, IDLE, 'every connection was accepted');
  const during = rssMb(server.pid);
  const answered = await rawExchange(server.port, { send: (s) => void s.write(requestBytes(ECHO, ECHO_BODY)), responses: 1 });
  t.equal(answered.responses[0]?.status, 200, 'a request on a new connection is answered meanwhile');
  t.ok(during - before < MAX_GROWTH_MB, `the server's RSS grew ${(during - before).toFixed(1)} MB for ${IDLE} connections (under ${MAX_GROWTH_MB})`);
  let gaveUp = false;
  const giveUp = setTimeout(() => {
    gaveUp = true;
    sockets.forEach((s) => s.destroy());
  }, 40_000);
  await allClosed;
  clearTimeout(giveUp);
  t.notOk(gaveUp, `all ${IDLE} were closed by the server before the test gave up (40 s)`);
  t.equal(errors, 0, 'none was reset');
  t.equal(await server.stop(), 0);
});

t.test('serve --max-connections 2: the third connection gets 503', async (t) => {
  const server = await serve(['--max-connections', '2']);
  t.teardown(() => server.stop());
  const held = await Promise.all([0, 1].map(() => rawExchange(server.port, { send: (s) => void s.write(requestBytes(ECHO, ECHO_BODY)), responses: 1 }, true)));
  t.same(
    held.map((h) => h.responses[0]?.status),
    [200, 200],
  );
  const third = await rawExchange(server.port, { send: (s) => void s.write(requestBytes('/healthz')) });
  t.equal(third.responses[0]?.status, 503);
  t.match(JSON.parse(third.responses[0]?.body ?? '{}'), { error_msg: /limit \(maxConnections\)/ });
  for (const h of held) h.socket.destroy();
  t.equal(await server.stop(), 0);
});
