// A second `actorserve serve` on the REST port the first listens on exits 1 naming the address
// (uWS would otherwise bind with SO_REUSEPORT and the two would split the traffic).
import t from 'tap';
import { createServer } from 'node:net';
import { REST_LISTENING, runCli as run } from '../helpers/cli.js';

t.test('a second serve on a busy REST port exits 1 naming the address; the first keeps serving', async (t) => {
  // a fixed port, as users configure: Linux never shares a port the kernel picked for port 0
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const free = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const first = run(['serve', '--servables', 'add', '--no-grpc', '--rest-address', `127.0.0.1:${free}`]);
  t.teardown(() => {
    first.child.kill('SIGKILL');
  });
  const [, port] = await first.waitFor(REST_LISTENING);
  const second = run(['serve', '--servables', 'add', '--no-grpc', '--rest-address', `127.0.0.1:${port}`]);
  t.teardown(() => {
    second.child.kill('SIGKILL');
  });
  const code = await Promise.race([second.exited, second.waitFor(REST_LISTENING).then(() => 'listening')]);
  t.equal(code, 1, 'exit code 1');
  t.match(second.output(), new RegExp(`actorserve: RESTful server could not bind to 127\\.0\\.0\\.1:${port} \\(address in use`));
  first.child.kill('SIGINT');
  t.equal(await first.exited, 0, 'the first server drains and exits 0');
});
