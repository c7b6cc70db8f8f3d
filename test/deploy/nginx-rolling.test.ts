// Two `actorserve serve` replicas behind nginx (the config of docs/deployment.md, taken from
// the page itself), a bounded load of keep-alive clients through nginx, and a rolling restart:
// SIGTERM one replica, its drain (/readyz 503 on an open connection, the request it holds
// finished, exit 0), start it again, wait for /readyz 200 and for nginx to send it traffic,
// then the other. No request may fail, and both replicas serve before and after.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { ADD_CONFIG, ROOT, servableFixture } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';
import { startNginx } from '../helpers/nginx.js';
import { addModel } from '../../dist/servables/example-models.js';

// Four replica starts, each loading ONNX Runtime: tens of seconds on a busy 2-core machine.
t.setTimeout(240_000);

const fx = servableFixture('nginx-rolling');
fx.config('add', ADD_CONFIG);
fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
t.teardown(() => fx.remove());

/** Load bounds: it stops at whichever comes first. */
const CLIENTS = 4;
const MAX_REQUESTS = 150_000;
const MAX_LOAD_MS = 200_000;
/** Requests a replica must answer through nginx to count as serving in a phase. */
const SERVED = 20;
/** How long a replica's `slow` request is held in its stage function during its drain. */
const HELD_MS = 1_500;

/** The first ```nginx block of docs/deployment.md, its example addresses replaced by the test's ports. */
function documentedNginxConfig(replicaPorts: readonly [number, number], listenPort: number): string {
  const page = readFileSync(path.join(ROOT, 'docs', 'deployment.md'), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(page)?.[1];
  if (block === undefined) throw new Error('docs/deployment.md has no ```nginx block');
  const replace = (text: string, from: string, to: string): string => {
    if (text.split(from).length !== 2) throw new Error(`docs/deployment.md's nginx block must hold "${from}" exactly once`);
    return text.replace(from, to);
  };
  let conf = replace(block, 'server 127.0.0.1:1501 ', `server 127.0.0.1:${replicaPorts[0]} `);
  conf = replace(conf, 'server 127.0.0.1:1502 ', `server 127.0.0.1:${replicaPorts[1]} `);
  return replace(conf, 'listen 127.0.0.1:8080;', `listen 127.0.0.1:${listenPort};`);
}

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  return port;
}

async function until(what: string, done: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const body = (x1: number[][]) => JSON.stringify({ instances: { x1, x2: [[1, 1], [1, 1]] } });
const plusOne = (x: number[][]) => ({ instances: [{ y: x.map((row) => row.map((v) => v + 1)) }] });

/** One replica: `actorserve serve` on a fixed REST port, started as a user starts it. */
class Replica {
  proc: ReturnType<typeof runCli>;

  constructor(readonly port: number) {
    this.proc = this.start();
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start() {
    return runCli(['serve', '--servable-dir', fx.dir, '--servables', 'add', '--rest-address', `127.0.0.1:${this.port}`, '--no-grpc', '--drain-timeout-ms', '20000']);
  }

  async ready(): Promise<void> {
    await this.proc.waitFor(REST_LISTENING);
    await until(`${this.address}/readyz answers 200`, () => fetch(`http://${this.address}/readyz`).then((r) => r.status === 200, () => false), 30_000);
  }
}

/** Closed-loop keep-alive clients through nginx, bounded in count and time. */
class Load {
  readonly failures: string[] = [];
  /** Requests answered, by the replica that answered (nginx's X-Upstream: its last address). */
  readonly served = new Map<string, number>();
  total = 0;
  /** Requests nginx sent to more than one replica before one answered. */
  retried = 0;
  private running = true;
  private readonly clients: Promise<void>[];
  private readonly deadline = Date.now() + MAX_LOAD_MS;

  constructor(private readonly url: string) {
    this.clients = Array.from({ length: CLIENTS }, (_, i) => this.client(i));
  }

  servedBy(address: string): number {
    return this.served.get(address) ?? 0;
  }

  get stopped(): boolean {
    return !this.running || this.total >= MAX_REQUESTS || Date.now() > this.deadline;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.clients);
  }

  private async client(i: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      // every 8th request holds 100 ms in a stage function, so drains find requests in flight
      const slow = (n + i) % 8 === 0;
      const x1 = slow ? [[100.5, 1.5], [1.5, 1.5]] : [[n + 0.5, 2.5], [3.5, 4.5]];
      this.total++;
      try {
        const r = await fetch(`${this.url}/model/add:${slow ? 'slow' : 'add_common'}`, { method: 'POST', body: body(x1) });
        const text = await r.text();
        const upstream = (r.headers.get('x-upstream') ?? '').split(', ');
        const answered = upstream[upstream.length - 1]!;
        if (upstream.length > 1) this.retried++;
        if (r.status !== 200 || text !== JSON.stringify(plusOne(x1))) {
          this.failures.push(`${r.status} from ${upstream.join(', ')}: ${text.slice(0, 200)}`);
        } else {
          this.served.set(answered, this.servedBy(answered) + 1);
        }
      } catch (err) {
        this.failures.push(`no reply: ${(err as Error).message} (${String((err as Error).cause)})`);
      }
    }
  }
}

/** A raw keep-alive connection to a replica; `ask` sends one GET and resolves with the reply's head. */
async function keepAliveConnection(port: number) {
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = '';
  let closed = false;
  socket.on('data', (d) => (received += d.toString('latin1')));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  return {
    async ask(target: string): Promise<string> {
      received = '';
      socket.write(`GET ${target} HTTP/1.1\r\nHost: replica\r\n\r\n`);
      await until(`a reply to GET ${target}`, () => received.includes('\r\n\r\n') || closed, 10_000);
      return received.slice(0, received.indexOf('\r\n\r\n'));
    },
    closed: () => closed,
  };
}

t.test('a rolling restart of two replicas behind nginx loses no request', async (t) => {
  const ports = [await freePort(), await freePort()] as const;
  const replicas = [new Replica(ports[0]), new Replica(ports[1])];
  t.teardown(() => {
    for (const r of replicas) r.proc.child.kill('SIGKILL');
  });
  await Promise.all(replicas.map((r) => r.ready()));

  const nginxPort = await freePort();
  const nginx = await startNginx(documentedNginxConfig(ports, nginxPort), nginxPort);
  t.teardown(() => nginx.stop());
  const load = new Load(`http://127.0.0.1:${nginxPort}`);
  t.teardown(() => load.stop());

  const servingSince = (r: Replica, counts: Map<string, number>) => {
    const since = counts.get(r.address) ?? 0;
    return () => load.servedBy(r.address) - since >= SERVED;
  };
  const start = new Map(load.served);
  for (const r of replicas) await until(`${r.address} served ${SERVED} requests before the restarts`, servingSince(r, start), 30_000);

  for (const r of replicas) {
    // An open keep-alive connection and a request held in flight, straight to the replica.
    const conn = await keepAliveConnection(r.port);
    t.match(await conn.ask('/readyz'), /^HTTP\/1\.1 200 /, `${r.address}: /readyz 200 before the signal`);
    const held = body([[HELD_MS + 0.5, 1.5], [1.5, 1.5]]);
    const heldReply = fetch(`http://${r.address}/model/add:slow`, { method: 'POST', body: held }).then((res) => res.status, (err: unknown) => `no reply: ${(err as Error).message}`);
    await new Promise((resolve) => setTimeout(resolve, 300)); // it reaches the stage function

    const old = r.proc;
    old.child.kill('SIGTERM');
    await old.waitFor(/SIGTERM: draining/);
    const drainingReady = await conn.ask('/readyz');
    t.match(drainingReady, /^HTTP\/1\.1 503 /, `${r.address}: /readyz 503 while draining`);
    t.match(drainingReady, /\r\nConnection: close\r\n/i, `${r.address}: ... with Connection: close`);
    await until(`${r.address} closed the keep-alive connection`, conn.closed, 10_000);
    t.equal(await heldReply, 200, `${r.address}: the request in flight finished`);
    t.equal(await old.exited, 0, `${r.address}: drained and exited 0`);
    t.match(old.output(), /\bstopped\n/, `${r.address}: nothing cut off by the drain timeout`);

    const counts = new Map(load.served);
    r.proc = r.start();
    await r.ready();
    await until(`nginx sent ${SERVED} requests to ${r.address} after its restart`, servingSince(r, counts), 30_000);
  }
  const after = new Map(load.served);
  for (const r of replicas) await until(`${r.address} served ${SERVED} requests after the restarts`, servingSince(r, after), 30_000);
  await load.stop();

  t.same(load.failures, [], 'no request failed');
  t.comment(`${load.total} requests through nginx, ${load.retried} of them retried on the other replica; served: ${JSON.stringify(Object.fromEntries(load.served))}`);
  for (const r of replicas) r.proc.child.kill('SIGTERM');
  t.same(await Promise.all(replicas.map((r) => r.proc.exited)), [0, 0], 'both replicas drain and exit 0 at the end');
});
