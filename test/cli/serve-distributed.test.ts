// `actorserve serve` as the coordinator of a distributed servable, as users run it: `serve
// --servables mmcol,add --distributed-address ...` and `actorserve agent` (2 rank processes) as
// child processes; a REST request gets the product of the ranks' shards, and the local servable
// served beside it answers too. Then the usage errors, each refused before anything starts.
import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { addModel } from '../../dist/servables/example-models.js';
import { ADD_CONFIG } from '../helpers/fixtures.js';
import { REST_LISTENING, runCli } from '../helpers/cli.js';
import { freePorts } from '../helpers/ports.js';
import { columnServable, near } from '../helpers/distributed.js';

const mm = columnServable('serve-distributed', 2);
t.teardown(() => mm.fx.remove());
mm.fx.config('add', ADD_CONFIG);
mm.fx.model('add', 1, 'add.onnx', addModel({ batch: 'N' }));
const here = ['--servable-dir', mm.fx.dir, '--rest-address', '127.0.0.1:0', '--grpc-address', '127.0.0.1:0'];

t.test('serve starts a distributed servable as the coordinator of `actorserve agent` ranks, beside a local one', async (t) => {
  const address = `127.0.0.1:${await freePorts(1)}`;
  // the rank table is found beside servable_config.ts (rank_table.json, the only one)
  const serve = runCli(['serve', ...here, '--servables', 'mmcol,add', '--distributed-address', address, '--wait-agents-s', '60']);
  t.teardown(async () => {
    if (serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill('SIGKILL');
    await serve.exited;
  });
  await serve.waitFor(/servable 'mmcol': waiting for 2 agent ranks to register at/, 60_000);
  const agent = runCli(['agent', '--distributed-address', address, '--model-files', mm.modelFiles.join(','), '--agent-start-port', String(await freePorts(2))]);
  t.teardown(async () => {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent.exited;
  });
  const [, port] = await serve.waitFor(REST_LISTENING, 60_000);
  await serve.waitFor(/serving add, mmcol from/, 30_000);
  const x = mm.row(3);
  const res = await fetch(`http://127.0.0.1:${port}/model/mmcol:predict`, { method: 'POST', body: JSON.stringify({ instances: [{ x: Array.from(x) }] }) });
  const json = (await res.json()) as { instances?: { y: number[] }[] };
  t.equal(res.status, 200, JSON.stringify(json));
  t.ok(json.instances && near(json.instances[0]!.y, mm.expected(x)), `y = -(x @ W) from the 2 ranks: ${JSON.stringify(json)}`);
  const add = await fetch(`http://127.0.0.1:${port}/model/add:add_common`, { method: 'POST', body: JSON.stringify({ instances: { x1: [[1, 1], [1, 1]], x2: [[2, 2], [2, 2]] } }) });
  t.same(await add.json(), { instances: [{ y: [[3, 3], [3, 3]] }] }, 'the local servable served beside it answers');
  serve.child.kill('SIGINT');
  t.equal(await serve.exited, 0, 'SIGINT drains and exits 0');
  t.equal(await agent.exited, 0, 'the agent exits once the coordinator stopped the servable');
  t.match(agent.output(), /all ranks ended: the coordinator stopped the servable/);
});

t.test('a signal while serve waits for the agents ends the wait and exits 0', async (t) => {
  const serve = runCli(['serve', ...here, '--servables', 'mmcol', '--distributed-address', `127.0.0.1:${await freePorts(1)}`]);
  await serve.waitFor(/servable 'mmcol': waiting for 2 agent ranks/, 60_000);
  serve.child.kill('SIGTERM');
  t.equal(await serve.exited, 0);
  t.match(serve.output(), /SIGTERM during start-up: stopped \(distributed servable 'mmcol' stopped before its agents registered\)/);
  t.notMatch(serve.output(), /listening/, 'no transport was started');
});

/** `serve` with `args`: exit 2 with `message`, nothing started. */
async function refused(t: Test, args: string[], message: RegExp): Promise<void> {
  const p = runCli(['serve', ...here, ...args]);
  t.equal(await p.exited, 2, args.join(' '));
  t.match(p.output(), message, args.join(' '));
  t.notMatch(p.output(), /started on|waiting for|listening/, 'nothing was started');
}

t.test('usage errors of the distributed flags and keys', async (t) => {
  await refused(t, ['--servables', 'add', '--distributed-address', '127.0.0.1:0'], /--distributed-address: none of the servables to serve \(add\) is distributed/);
  await refused(t, ['--servables', 'mmcol', '--distributed-address', '127.0.0.1:0', '--rank-table', 'nope.json'], /servable 'mmcol': the rank table nope\.json \(--rank-table \/ rankTableJsonFile\) does not exist/);
  await refused(t, ['--servables', 'mmcol', '--rank-table', 'rank_table.json'], /servable 'mmcol': --rank-table \/ rankTableJsonFile needs a coordinator address \(--distributed-address/);
  await refused(t, ['--servables', 'mmcol', '--wait-agents-s', 'soon'], /--wait-agents-s /);
  const noAddress = runCli(['serve', ...here, '--servables', 'mmcol']);
  t.equal(await noAddress.exited, 2);
  t.match(noAddress.output(), /servable 'mmcol' is distributed: not started here; .*give --distributed-address/);
  t.match(noAddress.output(), /no servables to serve under .*: mmcol is distributed and no --distributed-address/);

  writeFileSync(path.join(mm.fx.dir, 'mmcol', 'rank_table_other.json'), '{}');
  await refused(t, ['--servables', 'mmcol', '--distributed-address', '127.0.0.1:0'], /holds several rank tables \(rank_table\.json, rank_table_other\.json\): name one with --rank-table/);

  const config = path.join(mm.fx.dir, 'serve.json');
  writeFileSync(config, JSON.stringify({ servables: [{ name: 'add', distributedAddress: '127.0.0.1:0' }] }));
  await refused(t, ['--config', config], /servable 'add' is not distributed .*: distributedAddress applies to distributed servables only/);
  writeFileSync(config, JSON.stringify({ servables: [{ name: 'mmcol', distributedAdress: '127.0.0.1:0' }] }));
  await refused(t, ['--config', config], /config\.servables\[0\]: unknown key 'distributedAdress' \(did you mean 'distributedAddress'\?\)/);
  writeFileSync(config, JSON.stringify({ servables: [{ name: 'mmcol', waitAgentsTimeInSeconds: 'soon' }] }));
  await refused(t, ['--config', config], /config\.servables\[0\]\.waitAgentsTimeInSeconds/);
});
