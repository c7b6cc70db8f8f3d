// The coordinator going away, with real processes: a coordinator process (distributed.startServable
// and the REST server) and `actorserve agent` (2 rank processes, --coordinator-retry-seconds 8).
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

const RETRY_SECONDS = 8;
const mm = columnServable('distributed-restart', 2);
t.teardown(() => mm.fx.remove());
const address = `127.0.0.1:${await freePorts(1)}`;

/** A coordinator process serving mmcol with its agents at `address`; resolves once it serves, with its REST port. */
async function coordinator(): Promise<{ child: ChildProcess; rest: number; output: () => string }> {
  const script = `
import { ServingServer } from ${JSON.stringify(path.join(ROOT, 'dist', 'server.js'))};
const server = new ServingServer();
server.log = (line) => process.stderr.write(line + '\\n');
await server.startDistributedServable(${JSON.stringify(mm.fx.dir)}, 'mmcol', {
  rankTableJsonFile: 'rank_table.json', distributedAddress: ${JSON.stringify(address)},
  waitAgentsTimeInSeconds: 60, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 2000 });
const rest = await server.startRestfulServer('127.0.0.1:0');
process.stderr.write('serving; REST port ' + rest.port + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await until(() => /REST port \d+/.test(out) || child.exitCode !== null, 60_000, 'the coordinator to serve');
  if (child.exitCode !== null) throw new Error(`the coordinator exited ${child.exitCode}:\n${out}`);
  return { child, rest: Number(/REST port (\d+)/.exec(out)![1]), output: () => out };
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

const first = coordinator();
// the agents wait for a coordinator that is not up yet (AcquireConfig retried)
const agent = runCli(['agent', '--distributed-address', address, '--model-files', mm.modelFiles.join(','), '--agent-start-port', String(await freePorts(2)), '--coordinator-retry-seconds', String(RETRY_SECONDS)]);
t.teardown(async () => {
  if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
  await agent.exited;
});
const one = await first;
await agent.waitFor(/ranks registered: rank 0 .*, rank 1 /, 60_000);

t.test('a coordinator killed and restarted within the retry window: the ranks register again and it serves', async (tt) => {
  await predict(one.rest, 1);
  await kill(one.child);
  const two = await coordinator();
  await predict(two.rest, 2);
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
