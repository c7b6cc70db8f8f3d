// Agents on another network host: the test creates two network namespaces joined by a veth pair
// (a private /30, nothing else: no route out of either), runs the coordinator (a distributed
// servable with its REST server) in one and `actorserve agent` (2 rank processes) in the other,
// and sends a request from inside the coordinator's namespace. The values must be right, the
// ranks must listen on the agent host's address, and the bytes must have crossed the veth.
// Creating namespaces needs root (CAP_NET_ADMIN) and iproute2's `ip`; without them the test is
// skipped, saying which is missing (CI runs as root and installs iproute2).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { rankTableJson } from '../../dist/servables/distributed-models.js';
import { ROOT } from '../helpers/fixtures.js';
import { runCli, runProcess } from '../helpers/cli.js';
import { INNER, columnServable, near } from '../helpers/distributed.js';

const run = promisify(execFile);
const COORD_NS = `as-coord-${process.pid}`;
const AGENT_NS = `as-agent-${process.pid}`;
const VETH = 'veth0'; // the same name on both ends: each lives in its own namespace
const SUBNET = `10.233.${process.pid % 256}`;
const COORD_IP = `${SUBNET}.1`;
const AGENT_IP = `${SUBNET}.2`;

/** Why namespaces cannot be made here, or undefined when COORD_NS was just created. */
function cannotCreateNamespaces(): string | undefined {
  if (process.getuid?.() !== 0) return `not root (uid ${process.getuid?.() ?? 'unknown'}): creating network namespaces and veth pairs needs root (CAP_NET_ADMIN)`;
  const add = spawnSync('ip', ['netns', 'add', COORD_NS], { encoding: 'utf8' });
  if (add.error) return `iproute2's 'ip' cannot be run (${add.error.message}): install iproute2`;
  if (add.status !== 0) return `'ip netns add ${COORD_NS}' failed (${add.stderr.trim() || `exit ${add.status}`}): no CAP_NET_ADMIN or no network namespaces here`;
  return undefined;
}

const ip = (...args: string[]) => run('ip', args);
const inNs = (ns: string) => ['ip', 'netns', 'exec', ns];
const counter = async (ns: string, name: string) => Number((await run('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${VETH}/statistics/${name}`])).stdout);

/** Kills what still runs in the namespaces (only this test's children can), then deletes them. */
function removeNamespaces(): void {
  for (const ns of [COORD_NS, AGENT_NS]) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

const skip = cannotCreateNamespaces();

t.test('agents in another network namespace serve over a veth pair', { skip: skip ?? false }, async (tt) => {
  tt.teardown(removeNamespaces);
  await ip('netns', 'add', AGENT_NS);
  await ip('-n', COORD_NS, 'link', 'add', VETH, 'type', 'veth', 'peer', 'name', VETH, 'netns', AGENT_NS);
  for (const [ns, addr] of [[COORD_NS, COORD_IP], [AGENT_NS, AGENT_IP]] as const) {
    await ip('-n', ns, 'addr', 'add', `${addr}/30`, 'dev', VETH);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'link', 'set', VETH, 'up');
  }
  const links = (await ip('-n', AGENT_NS, '-o', 'link', 'show')).stdout.trim().split('\n');
  tt.equal(links.length, 2, `the agent host has only lo and the veth (${links.map((l) => l.split(':')[1]?.trim()).join(', ')})`);
  tt.equal((await ip('-n', AGENT_NS, 'route', 'show')).stdout.trim().split('\n').length, 1, 'and one route: the /30 to the coordinator');

  const mm = columnServable('distributed-netns', 2);
  tt.teardown(() => mm.fx.remove());
  writeFileSync(path.join(mm.fx.dir, 'mmcol', 'rank_table.json'), rankTableJson(2, AGENT_IP));
  const script = path.join(mm.fx.dir, 'coordinator.mjs');
  // heartbeats every 60 s: the request below is nearly all the traffic while it runs
  writeFileSync(
    script,
    `import { ServingServer } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'server.js')).href)};
const server = new ServingServer();
server.log = (line) => console.log(line);
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)));
await server.startDistributedServable(${JSON.stringify(mm.fx.dir)}, 'mmcol', { rankTableJsonFile: 'rank_table.json',
  distributedAddress: '${COORD_IP}:6200', waitAgentsTimeInSeconds: 30, heartbeatIntervalMs: 60000, heartbeatTimeoutMs: 120000 });
const rest = await server.startRestfulServer('${COORD_IP}:1500');
console.log('coordinator REST on port ' + rest.port);
`,
  );
  const rxBefore = await counter(COORD_NS, 'rx_bytes');
  const coordinator = runProcess([...inNs(COORD_NS), process.execPath, script]);
  tt.teardown(async () => {
    if (coordinator.child.exitCode === null && coordinator.child.signalCode === null) coordinator.child.kill('SIGTERM');
    await coordinator.exited;
  });
  await coordinator.waitFor(new RegExp(`waiting for 2 agent ranks to register at ${COORD_IP}:6200`), 15_000);

  const agent = runCli(
    ['agent', '--distributed-address', `${COORD_IP}:6200`, '--model-files', mm.modelFiles.join(','), '--agent-ip', AGENT_IP, '--rank-start', '0', '--agent-start-port', '7000', '--coordinator-retry-seconds', '5'],
    inNs(AGENT_NS),
  );
  tt.teardown(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGTERM');
    await agent.exited;
  });
  const registered = await agent.waitFor(/ranks registered: (.*)/, 20_000);
  tt.match(registered[1]!, new RegExp(`rank 0 on ${AGENT_IP}:7000 .*rank 1 on ${AGENT_IP}:7001`), 'the ranks listen on the agent host address');
  await coordinator.waitFor(/coordinator REST on port 1500/, 15_000);
  const rxRegistered = await counter(COORD_NS, 'rx_bytes');
  tt.ok(rxRegistered > rxBefore, `registration came in over the veth (${rxRegistered - rxBefore} bytes)`);

  // the client runs in the coordinator's namespace too: the servable's address exists only there
  const xs = Array.from({ length: 8 }, (_, k) => mm.row(k));
  const agentRxBefore = await counter(AGENT_NS, 'rx_bytes');
  const client = `const r = await fetch('http://${COORD_IP}:1500/model/mmcol:predict', { method: 'POST', headers: { 'content-type': 'application/json' },
  body: ${JSON.stringify(JSON.stringify({ instances: xs.map((x) => ({ x: Array.from(x) })) }))} });
console.log(JSON.stringify({ status: r.status, body: await r.text() }));`;
  const reply = JSON.parse((await run('ip', ['netns', 'exec', COORD_NS, process.execPath, '--input-type=module', '-e', client])).stdout) as { status: number; body: string };
  tt.equal(reply.status, 200, `REST answers 200 (${reply.body.slice(0, 200)})`);
  const instances = (JSON.parse(reply.body) as { instances: { y: number[] }[] }).instances;
  tt.equal(instances.length, xs.length);
  instances.forEach((inst, i) => tt.ok(near(inst.y, mm.expected(xs[i]!)), `instance ${i} = -(x @ W), from the ranks on the other host`));

  // each rank got the whole batch: at least its float32 bytes came in on the agent's end of the veth
  const agentRx = (await counter(AGENT_NS, 'rx_bytes')) - agentRxBefore;
  tt.ok(agentRx >= 2 * xs.length * INNER * 4, `the batch crossed the veth to the agent host (${agentRx} bytes for ${2 * xs.length * INNER * 4} bytes of inputs to 2 ranks)`);

  coordinator.child.kill('SIGTERM');
  tt.equal(await coordinator.exited, 0, 'the coordinator stops');
  tt.equal(await agent.exited, 0, 'and tells the agent, across the veth, to exit');
});
