/**
 * The gRPC ceiling baseline shared by perf/grpc-bench.ts and the perf suite: a bare
 * @grpc/grpc-js server with actorserve's protos. `MSService/Predict` answers every instance
 * with its x1 as y at once; `PredictStream` does the same per request. Same messages, same
 * sizes, no model.
 */
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { protos, type WirePredictReply, type WirePredictRequest, type WireStreamReply, type WireStreamRequest } from '../transports/grpc/proto.js';

export async function startGrpcEcho(): Promise<{ address: string; close: () => void }> {
  const { msService, actorServe } = protos();
  const server = new Server({ 'grpc.max_receive_message_length': 100 * 1024 * 1024, 'grpc.max_send_message_length': 100 * 1024 * 1024 });
  const answer = (instances: WirePredictRequest['instances']) => (instances ?? []).map((i) => ({ items: { y: i.items!['x1']! } }));
  server.addService(msService, {
    Predict: (call: ServerUnaryCall<WirePredictRequest, WirePredictReply>, cb: sendUnaryData<WirePredictReply>) => {
      cb(null, { servable_spec: call.request.servable_spec ?? {}, instances: answer(call.request.instances), error_msg: [] });
    },
  });
  server.addService(actorServe, {
    PredictStream: (call: ServerDuplexStream<WireStreamRequest, WireStreamReply>) => {
      call.on('data', (req: WireStreamRequest) => call.write({ id: req.id ?? 0, results: answer(req.instances).map((i) => ({ outputs: i.items })) }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}
