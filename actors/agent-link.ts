/**
 * The coordinator's side of one rank's batches: the rank's Agent client and one long-lived
 * `PredictStream` (actorserve_distributed.proto), opened with the first batch. A batch is
 * written as bytes encoded once for every rank (`agentProtos().encodePredictRequest`) and
 * answered by a reply carrying its id. No call, headers or deadline per batch: a unary call per
 * batch cost ~1 ms of CPU on each side per rank, most of a distributed request
 * (docs/distributed.md, Measured). The coordinator times batches itself (`waitsFor`, `close`).
 *
 * The stream failing or ending (the rank process died, its connection dropped) fails every
 * batch waiting on it and reports the rank broken once.
 */
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, type ExitReply, type ExitRequest, type PredictReply, agentProtos, unary } from './agent-wire.js';

interface Waiter {
  resolve(reply: PredictReply): void;
  reject(err: Error): void;
}

export class RankLink {
  private readonly client: grpc.Client;
  private stream: grpc.ClientDuplexStream<Buffer, PredictReply> | undefined;
  private readonly waiting = new Map<number, Waiter>();
  /** Why it no longer carries batches (set once). */
  private broken: string | undefined;

  /** `onBroken` is called once when the stream fails or ends by itself (not after `close`). */
  constructor(
    address: string,
    credentials: grpc.ChannelCredentials,
    private readonly onBroken: (reason: string) => void,
  ) {
    this.client = new (agentProtos().AgentClient)(address, credentials, CHANNEL_OPTIONS);
  }

  private open(): grpc.ClientDuplexStream<Buffer, PredictReply> {
    const stream = (this.client as unknown as { PredictStream(): grpc.ClientDuplexStream<Buffer, PredictReply> }).PredictStream();
    stream.on('data', (reply: PredictReply) => {
      const w = this.waiting.get(reply.id);
      if (!w) return; // a batch that timed out
      this.waiting.delete(reply.id);
      w.resolve(reply);
    });
    stream.on('error', (err: Error) => this.fail(`failed a batch: its batch stream broke: ${err.message}`, true));
    stream.on('end', () => this.fail('failed a batch: it ended its batch stream', true));
    return stream;
  }

  /** Sends batch `id` (its request encoded as `bytes`); resolves with the rank's reply. */
  send(id: number, bytes: Buffer): Promise<PredictReply> {
    if (this.broken !== undefined) return Promise.reject(new Error(this.broken));
    this.stream ??= this.open();
    const stream = this.stream;
    return new Promise<PredictReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      stream.write(bytes);
    });
  }

  /** Whether batch `id` waits for this rank's reply. */
  waitsFor(id: number): boolean {
    return this.waiting.has(id);
  }

  private fail(reason: string, report: boolean): void {
    if (this.broken !== undefined) return;
    this.broken = reason;
    for (const w of this.waiting.values()) w.reject(new Error(reason));
    this.waiting.clear();
    if (report) this.onBroken(reason);
  }

  /** Fails the batches waiting with `reason` and closes the stream and the channel. */
  close(reason: string): void {
    this.fail(reason, false);
    this.stream?.cancel();
    this.client.close();
  }

  /** Asks the rank to exit (MindSpore's MSAgent.Exit); never rejects. */
  async exit(request: ExitRequest, timeoutMs: number): Promise<void> {
    await unary<ExitRequest, ExitReply>(this.client, 'Exit', request, timeoutMs).catch(() => undefined);
  }
}
