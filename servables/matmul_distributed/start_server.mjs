// The coordinator of the matmul_distributed example (docs/distributed.md): serves the servable
// over gRPC (127.0.0.1:5500) and REST (127.0.0.1:1500) once its 8 ranks registered at
// 127.0.0.1:6200. Start the ranks with (from the project root, after `npm run gen-models`):
//   node bin/actorserve.js agent --distributed-address 127.0.0.1:6200 \
//     --model-files $(echo servables/matmul_distributed/model/device{0..7}/matmul.onnx | tr ' ' ,)
// Run: node servables/matmul_distributed/start_server.mjs
import { startDistributedExample } from '../start-distributed-example.mjs';

await startDistributedExample('matmul_distributed', 'rank_table_8pcs.json');
