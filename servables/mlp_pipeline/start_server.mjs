// The coordinator of the mlp_pipeline example (2 stages × 2 ranks) (docs/distributed.md): serves the servable
// over gRPC (127.0.0.1:5500) and REST (127.0.0.1:1500) once its 4 ranks registered at
// 127.0.0.1:6200. Start the ranks with (from the project root, after `npm run gen-models`):
//   node bin/actorserve.js agent --distributed-address 127.0.0.1:6200 \
//     --model-files $(echo servables/mlp_pipeline/model/device{0..3}/mlp.onnx | tr ' ' ,)
// Run: node servables/mlp_pipeline/start_server.mjs
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { distributed, server } from 'actorserve';

const servables = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await distributed.startServable(servables, 'mlp_pipeline', {
  rankTableJsonFile: 'rank_table_4pcs.json',
  versionNumber: 1,
  distributedAddress: '127.0.0.1:6200',
  waitAgentsTimeInSeconds: 60,
});
await server.startGrpcServer('127.0.0.1:5500');
await server.startRestfulServer('127.0.0.1:1500');
const stop = () => void server.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
