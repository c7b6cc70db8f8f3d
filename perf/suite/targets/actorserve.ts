/**
 * perf suite target: actorserve itself, in its own process, the way `actorserve serve` runs
 * it (ServingServer, startServables, REST on uWebSockets.js) plus the gRPC transport
 * (MSService/Predict and PredictStream) on a second port.
 *
 *   node dist/perf/suite/targets/actorserve.js --servable-dir DIR --servables add,mlp \
 *     [--device-ids 0] [--intra-op-threads 1]
 *
 * Prints `READY {"rest": "127.0.0.1:P", "grpc": "127.0.0.1:Q"}` once serving; SIGTERM stops it.
 */
import { parseArgs } from 'node:util';
import { ServingServer } from '../../../server.js';
import { ServableStartConfig } from '../../../engine/start-config.js';
import { startGrpcServer } from '../../../transports/grpc/server.js';

const { values } = parseArgs({
  options: {
    'servable-dir': { type: 'string' },
    servables: { type: 'string' },
    'device-ids': { type: 'string', default: '0' },
    'intra-op-threads': { type: 'string', default: '1' },
  },
});
const deviceIds = values['device-ids'].split(',').map(Number);
const intraOpThreads = Number(values['intra-op-threads']);
const server = new ServingServer();
server.log = (line) => process.stderr.write(`${line}\n`);
await server.startServables(
  values.servables!.split(',').map(
    (servableName) => new ServableStartConfig({ servableDirectory: values['servable-dir']!, servableName, deviceIds, intraOpThreads }),
  ),
);
const rest = await server.startRestfulServer('127.0.0.1:0');
const grpc = await startGrpcServer(server, '127.0.0.1:0');
process.stdout.write(`READY ${JSON.stringify({ rest: rest.address, grpc: `127.0.0.1:${grpc.port}` })}\n`);

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => {
  setTimeout(() => process.exit(0), 5000).unref();
  void Promise.all([grpc.close(), server.stop()]).finally(() => process.exit(0)); // exits either way
});
