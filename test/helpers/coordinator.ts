// A distributed servable's coordinator (2 ranks in 1 stage unless told otherwise, combine 'sum')
// listening on a free loopback port, with a client of its Coordinator service, for tests that
// speak the agent link themselves.
import type { Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { AgentCoordinator, type CoordinatorOptions } from '../../dist/actors/agent-coordinator.js';
import { CHANNEL_OPTIONS, agentProtos } from '../../dist/actors/agent-wire.js';
import { parseRankTable } from '../../dist/engine/rank-table.js';
import { rankTableJson } from '../../dist/servables/distributed-models.js';

export type Settings = Pick<CoordinatorOptions, 'heartbeatIntervalMs' | 'heartbeatTimeoutMs' | 'predictTimeoutMs' | 'log'> &
  Partial<Pick<CoordinatorOptions, 'rankSize' | 'stageSize'>>;

/** Starts the coordinator and its client; both are closed at the end of `t`. */
export async function testCoordinator(t: Test, settings: Settings): Promise<{ coordinator: AgentCoordinator; client: grpc.Client; address: string }> {
  const rankSize = settings.rankSize ?? 2;
  const coordinator = await AgentCoordinator.start({
    address: '127.0.0.1:0',
    servableName: 'mm',
    versionNumber: 1,
    rankSize: 2,
    stageSize: 1,
    combine: 'sum',
    concatAxis: 0,
    table: parseRankTable(rankTableJson(rankSize)),
    ...settings,
  });
  t.teardown(() => coordinator.stop());
  const address = `127.0.0.1:${coordinator.port}`;
  const client = new (agentProtos().CoordinatorClient)(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  t.teardown(() => client.close());
  return { coordinator, client, address };
}
