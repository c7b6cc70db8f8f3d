// The coordinator going away, with real processes: a coordinator process (distributed.startServable
// and the REST server) and `actorserve agent` (2 rank processes, --coordinator-retry-seconds 15).
// The coordinator is killed with SIGKILL; a new coordinator process on the same address within
// the retry window gets the ranks back (their heartbeat is answered "unknown", they register
// again) and serves; killed again and not restarted, the agents give up after the window, log
// why, and exit 0.
import t from 'tap';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { columnServable, near, until } from '../helpers/distributed.js';

const RETRY_SECONDS = 15;
const mm = columnServable('distributed-restart', 2);
t.teardown(() => mm.fx.remove());
const address = `127.0.0.1:${await freePorts(1)}`;

interface Coordinator {
  readonly child: ChildProcess;
  output(): string;
  /** Starts the servable (and the REST server); resolves with the REST port once it serves. */
  serve(): Promise<number>;
}

/**
 * A coordinator process for mmcol with its agents at `address`, loaded up to the servable's
 * start (which waits for a line on stdin), so that a restart is quick on a loaded machine.
 */
function coordinator(): Coordinator {
  const script = `
import { ServingServer } from ${JSON.stringify(path.join(ROOT, 'dist', 'server.js'))};
import { once } from 'node:events';
await once(process.stdin, 'data');
const server = new ServingServer();
server.log = (line) => process.stderr.write(line + '\\n');
await server.startDistributedServable(${JSON.stringify(mm.fx.dir)}, 'mmcol', {
  rankTableJsonFile: 'rank_table.json', distributedAddress: ${JSON.stringify(address)},
  waitAgentsTimeInSeconds: 60, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 2000 });
const rest = await server.startRestfulServer('127.0.0.1:0');
process.stderr.write('serving; REST port ' + rest.port + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const serve = async (): Promise<number> => {
    child.stdin.write('go\n');
    await until(() => /REST port \d+/.test(out) || child.exitCode !== null, 60_000, 'the coordinator to serve').catch((err: Error) => {
      throw new Error(`${err.message}; coordinator:\n${out}\nagent:\n${agent.output()}`);
    });
    if (child.exitCode !== null) throw new Error(`the coordinator exited ${child.exitCode}:\n${out}`);
    return Number(/REST port (\d+)/.exec(out)![1]);
  };
  return { child, output: () => out, serve };
}

async function predict(rest: number, k: number): Promise<void> {
  const x = mm.row(k);
  const res = await fetch(`http://127.0.0.1:${rest}/model/mmcol:predict`, { method: 'POST', body: JSON.stringify({ instances: [{ x: Array.from(x) }] }) });
  const json = (await res.json()) as { instances?: { y: number[] }[] };
  if (res.status !== 200 || !json.instances || !near(json.instances[0]!.y, mm.expected(x))) throw new Error(`predict: HTTP ${res.status} ${JSON.stringify(json)}`);
}

function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return exited;
}

const one = coordinator();
const serving = one.serve();
// the agents wait for a coordinator that is not up yet (AcquireConfig retried)
const agent = runCli(['agent', '--distributed-address', address, '--model-files', mm.modelFiles.join(','), '--agent-start-port', String(await freePorts(2)), '--coordinator-retry-seconds', String(RETRY_SECONDS)]);
t.teardown(async () => {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
  await agent.exited;
});
const oneRest = await serving;
await agent.waitFor(/ranks registered: rank 0 .*, rank 1 /, 60_000);

t.test('a coordinator killed and restarted within the retry window: the ranks register again and it serves', async (tt) => {
  await predict(oneRest, 1);
  const two = coordinator(); // loaded while the first one serves
  await kill(one.child);
  await predict(await two.serve(), 2);
  tt.pass('the restarted coordinator serves a request');
  tt.match(two.output(), /rank 0 registered from .*rank 1 registered from|rank 1 registered from .*rank 0 registered from/s, 'both ranks registered with the new coordinator');
  tt.match(agent.output(), /the coordinator does not know this rank \(it restarted, or dropped the rank\); registering again/, 'the ranks said why they registered again');
  tt.equal(agent.child.exitCode, null, 'the agent process kept running');
  tt.notMatch(agent.output(), /starting it again/, 'no rank process was restarted');

  await kill(two.child);
  // not restarted: after RETRY_SECONDS without contact the ranks exit, and so does the agent
  tt.equal(await agent.exited, 0, 'the agent exits 0');
  tt.match(agent.output(), new RegExp(`no contact with the coordinator at ${address} for ${RETRY_SECONDS} s; exiting`), 'the ranks log why they exit');
  tt.match(agent.output(), /all ranks ended: the coordinator stayed unreachable/, 'the agent logs why it ended');
});
