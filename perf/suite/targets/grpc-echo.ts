/**
 * perf suite baseline: the bare grpc-js echo server (perf/grpc-echo-server.ts) in its own
 * process, the gRPC ceiling.
 *
 * Prints `READY {"grpc": "127.0.0.1:P"}`; SIGTERM stops it.
 */
import { startGrpcEcho } from '../../grpc-echo-server.js';

const echo = await startGrpcEcho();
process.stdout.write(`READY ${JSON.stringify({ grpc: echo.address })}\n`);
process.once('SIGTERM', () => {
  echo.close();
  process.exit(0);
});
