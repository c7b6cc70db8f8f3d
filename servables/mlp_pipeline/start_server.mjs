// The coordinator of the mlp_pipeline example (2 stages × 2 ranks; docs/distributed.md): serves
// the servable over gRPC (127.0.0.1:5500) and REST (127.0.0.1:1500) once its 4 ranks registered
// at 127.0.0.1:6200. Start the ranks with (from the project root, after `npm run gen-models`):
//   node bin/actorserve.js agent --distributed-address 127.0.0.1:6200 \
//     --model-files $(echo servables/mlp_pipeline/model/device{0..3}/mlp.onnx | tr ' ' ,)
// Run: node servables/mlp_pipeline/start_server.mjs
import { startDistributedExample } from '../start-distributed-example.mjs';

await startDistributedExample('mlp_pipeline', 'rank_table_4pcs.json');
