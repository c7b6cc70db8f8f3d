// The coordinator of the matmul_distributed example (docs/distributed.md): serves the servable
// over gRPC (127.0.0.1:5500) and REST (127.0.0.1:1500) once its 8 ranks registered at
// 127.0.0.1:6200. Start the ranks with (from the project root, after `npm run gen-models`):
//   node bin/actorserve.js agent --distributed-address 127.0.0.1:6200 \
//     --model-files $(echo servables/matmul_distributed/model/device{0..7}/matmul.onnx | tr ' ' ,)
// Run: node servables/matmul_distributed/start_server.mjs
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { distributed, server } from 'actorserve';

const servables = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await distributed.startServable(servables, 'matmul_distributed', {
  rankTableJsonFile: 'rank_table_8pcs.json',
  versionNumber: 1,
  distributedAddress: '127.0.0.1:6200',
  waitAgentsTimeInSeconds: 60,
});
await server.startGrpcServer('127.0.0.1:5500');
await server.startRestfulServer('127.0.0.1:1500');
const stop = () => void server.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
