/**
 * The metrics a ServingServer exposes on `/metrics` (docs/operating.md, "Metrics", lists them). Requests
 * are counted where the engine API is entered; queue, batch and inference figures come from
 * the model scheduler through a per-servable observer; gauges are read at scrape time.
 */
import { BATCH_SIZE_BUCKETS, LATENCY_BUCKETS, MetricsRegistry } from './metrics.js';
import { registerProcessMetrics } from './process-metrics.js';

/** What a model scheduler reports, with the servable labels already bound. */
export interface BatchObserver {
  /** `model` is the model's key as declared (`tensor_add.onnx`, or `key:<subgraph>` for a model of several files). */
  queued(model: string, seconds: number): void;
  batch(model: string, size: number, inferenceSeconds: number): void;
}

/** The live figures of one loaded servable version, read at scrape time. */
export interface RuntimeFigures {
  readonly name: string;
  readonly version: number;
  readonly inflight: number;
  readonly queued: number;
  readonly restarts: number;
  readonly liveActors: number;
  /** Live sequences of the version's stateful models (started, not ended, not expired). */
  readonly liveSequences: number;
  /** Sequences started so far. */
  readonly sequencesStarted: number;
  /** Sequences dropped after their idle timeout. */
  readonly sequencesExpired: number;
}

export type Transport = 'rest' | 'grpc' | 'engine';

export class ServingMetrics {
  readonly registry = new MetricsRegistry();
  private readonly requests;
  private readonly failures;
  private readonly latency;
  private readonly queueTime;
  private readonly inferenceTime;
  private readonly batchSize;
  private readonly streamEvents;

  constructor(runtimes: () => Iterable<RuntimeFigures>) {
    const r = this.registry;
    this.requests = r.counter('actorserve_requests_total', 'Requests received, by servable, method, version and transport.', ['servable', 'method', 'version', 'transport']);
    this.failures = r.counter(
      'actorserve_request_failures_total',
      'Requests that failed as a whole or in at least one instance, by error code.',
      ['servable', 'method', 'version', 'transport', 'code'],
    );
    this.latency = r.histogram('actorserve_request_duration_seconds', 'End-to-end latency of requests in the engine.', ['servable', 'method', 'transport'], LATENCY_BUCKETS);
    this.queueTime = r.histogram('actorserve_queue_duration_seconds', 'Time instances waited in a model queue before their batch was sent.', ['servable', 'model'], LATENCY_BUCKETS);
    this.inferenceTime = r.histogram('actorserve_inference_duration_seconds', 'Time from sending a batch to a device actor to its result.', ['servable', 'model'], LATENCY_BUCKETS);
    this.streamEvents = r.counter(
      'actorserve_stream_events_total',
      'Outputs events inferStream handed to readers: partial results of streaming methods, one per instance of other methods.',
      ['servable', 'method'],
    );
    this.batchSize = r.histogram('actorserve_batch_size', 'Instances per model batch (padding not counted).', ['servable', 'model'], BATCH_SIZE_BUCKETS);
    const each = <T>(pick: (f: RuntimeFigures) => T) =>
      function* () {
        for (const f of runtimes()) yield [[f.name, f.version], pick(f) as number] as const;
      };
    r.collected('actorserve_inflight_requests', 'Requests admitted and not yet answered.', 'gauge', ['servable', 'version'], each((f) => f.inflight));
    r.collected('actorserve_queue_depth', 'Instances waiting in model queues.', 'gauge', ['servable', 'version'], each((f) => f.queued));
    r.collected('actorserve_device_actors_live', 'Device actors up and serving.', 'gauge', ['servable', 'version'], each((f) => f.liveActors));
    r.collected('actorserve_sequences_live', 'Live sequences of stateful models (started, not ended, not expired).', 'gauge', ['servable', 'version'], each((f) => f.liveSequences));
    r.collected('actorserve_sequences_started_total', 'Sequences of stateful models started.', 'counter', ['servable', 'version'], each((f) => f.sequencesStarted));
    r.collected('actorserve_sequences_expired_total', 'Sequences dropped after their idle timeout.', 'counter', ['servable', 'version'], each((f) => f.sequencesExpired));
    r.collected('actorserve_device_actor_restarts_total', 'Device actors restarted after dying.', 'counter', ['servable', 'version'], each((f) => f.restarts));
    registerProcessMetrics(r);
  }

  observer(servable: string): BatchObserver {
    return {
      queued: (model, seconds) => this.queueTime.observe([servable, model], seconds),
      batch: (model, size, seconds) => {
        this.batchSize.observe([servable, model], size);
        this.inferenceTime.observe([servable, model], seconds);
      },
    };
  }

  request(servable: string, method: string, version: number | string, transport: Transport, seconds: number, failedCode: string | undefined): void {
    this.requests.inc([servable, method, version, transport]);
    if (failedCode) this.failures.inc([servable, method, version, transport, failedCode]);
    this.latency.observe([servable, method, transport], seconds);
  }

  /** One outputs event of `inferStream` taken by its reader. */
  streamEvent(servable: string, method: string): void {
    this.streamEvents.inc([servable, method]);
  }

  /**
   * A request a transport refused before it reached the engine (unparsable body, bad header,
   * body too large or too slow, malformed tensor): counted with empty servable, method and
   * version labels, as requests naming unknown servables are.
   */
  refused(transport: Transport, code: string): void {
    this.requests.inc(['', '', '', transport]);
    this.failures.inc(['', '', '', transport, code]);
  }

  render(): string {
    return this.registry.render();
  }
}
