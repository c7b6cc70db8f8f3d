// Starts the coordinator of a bundled distributed example (docs/distributed.md): serves the
// servable over gRPC (127.0.0.1:5500) and REST (127.0.0.1:1500) once its ranks registered at
// 127.0.0.1:6200; Ctrl-C stops it (and tells the agents to exit). Each example's
// start_server.mjs calls it with its servable and rank table.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { distributed, server } from 'actorserve';

export async function startDistributedExample(servableName, rankTableJsonFile) {
  const servables = path.dirname(fileURLToPath(import.meta.url));
  await distributed.startServable(servables, servableName, {
    rankTableJsonFile,
    versionNumber: 1,
    distributedAddress: '127.0.0.1:6200',
    waitAgentsTimeInSeconds: 60,
  });
  await server.startGrpcServer('127.0.0.1:5500');
  await server.startRestfulServer('127.0.0.1:1500');
  const stop = () => void server.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
