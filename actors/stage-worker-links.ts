/**
 * The main thread's end of the stage workers' control plane. Piscina picks the thread of each
 * task, so a task cannot address one worker; instead each worker announces a MessagePort when
 * it starts (StageWorkerAnnouncement, re-emitted by piscina as the pool's 'message' event) and
 * exposes StageWorkerControl there through comlink. A StageWorkerLink is one such port.
 *
 * The pool runs its threads with piscina's `atomics: 'disabled'`: with the default ('sync') an
 * idle thread blocks in Atomics.wait until the next task, and its control port would not be read.
 */
import { type Remote, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { ServingError } from '../engine/errors.js';
import {
  STAGE_PROTOCOL_VERSION,
  type ControlReply,
  type StageWorkerAnnouncement,
  type StageWorkerControl,
  type StageWorkerHealth,
  type StageWorkerStats,
} from './stage-protocol.js';

/** One stage worker's control plane. Calls made after the thread exited fail with E_STAGE_FAILED. */
export class StageWorkerLink {
  private readonly remote: Remote<StageWorkerControl>;
  private pending = 0;
  /** Rejects once the port closes (the thread exited, or the pool closed the link). */
  private readonly closed: Promise<never>;

  constructor(
    readonly threadId: number,
    private readonly port: MessagePort,
  ) {
    this.closed = new Promise<never>((_, reject) => {
      port.once('close', () => reject(new ServingError('E_STAGE_FAILED', `stage thread ${threadId} has exited`)));
    });
    this.closed.catch(() => undefined); // only calls in flight care
    this.remote = wrap<StageWorkerControl>(nodeEndpoint(port));
    // Referenced only while a call waits, so that an open control port never keeps the process up.
    port.unref();
  }

  /** Imports the config module in this thread; a failure is the import's error (E_LOAD_FAILED). */
  async load(configPath: string): Promise<void> {
    unwrap(await this.call<ControlReply<null>>((c) => c.load(configPath)));
  }

  /** Answers when the thread's event loop turns: after a synchronous stage function returns. */
  health(): Promise<StageWorkerHealth> {
    return this.call((c) => c.health());
  }

  stats(): Promise<StageWorkerStats> {
    return this.call((c) => c.stats());
  }

  /** See StageWorkerControl.drain. */
  drain(): Promise<StageWorkerStats> {
    return this.call((c) => c.drain());
  }

  close(): void {
    this.port.close();
  }

  private async call<T>(fn: (control: Remote<StageWorkerControl>) => Promise<T>): Promise<T> {
    if (this.pending++ === 0) this.port.ref();
    try {
      return await Promise.race([fn(this.remote), this.closed]);
    } finally {
      if (--this.pending === 0) this.port.unref();
    }
  }
}

function unwrap<T>(reply: ControlReply<T>): T {
  if (reply.kind === 'error') throw ServingError.fromData(reply.error);
  return reply.value;
}

function isAnnouncement(message: unknown): message is StageWorkerAnnouncement {
  const kind = (message as { kind?: unknown } | null)?.kind;
  return kind === 'stage-worker.ready' || kind === 'stage-worker.refused';
}

/** The control links of a pool's live threads, kept as threads start and exit. */
export class StageWorkerLinks {
  private readonly links = new Map<number, StageWorkerLink>();
  /** Why a thread refused to run (protocol version), once one has. */
  private refused: ServingError | undefined;
  private waiters: (() => void)[] = [];
  private closedDown = false;

  /** `threads`: how many threads the pool keeps, for `ready`. */
  constructor(
    pool: Piscina,
    private readonly threads: number,
  ) {
    pool.on('message', (message: unknown) => {
      if (isAnnouncement(message)) this.announced(message);
    });
    // (a link also leaves when its port closes, which a thread's exit does as well)
    pool.on('workerDestroy', (worker: { readonly id: number }) => this.links.get(worker.id)?.close());
  }

  /** The links of the threads running now. */
  all(): StageWorkerLink[] {
    return [...this.links.values()];
  }

  /**
   * Resolves once every thread has announced its control port; rejects when one refused (its
   * reason), or after `timeoutMs` (a thread that cannot start), or once the links are closed
   * (a start abandoned for another reason must not keep the process alive on this timer).
   */
  async ready(timeoutMs: number): Promise<StageWorkerLink[]> {
    const deadline = performance.now() + timeoutMs;
    while (!this.refused && !this.closedDown && this.links.size < this.threads) {
      const left = deadline - performance.now();
      if (left <= 0) throw new ServingError('E_LOAD_FAILED', `stage threads: ${this.links.size} of ${this.threads} started within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.refused) throw this.refused;
    if (this.closedDown) throw new ServingError('E_LOAD_FAILED', 'stage threads: closed before they all started');
    return this.all();
  }

  /** Closes every link; announcements that arrive later are closed at once. */
  close(): void {
    this.closedDown = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private announced(message: StageWorkerAnnouncement): void {
    if (message.kind === 'stage-worker.refused') {
      this.refused ??= new ServingError('E_INTERNAL', message.reason);
    } else if (message.protocolVersion !== STAGE_PROTOCOL_VERSION) {
      message.control.close();
      this.refused ??= new ServingError(
        'E_INTERNAL',
        `stage protocol mismatch: stage thread ${message.threadId} speaks version ${message.protocolVersion}, the stage pool version ${STAGE_PROTOCOL_VERSION}`,
      );
    } else if (this.closedDown) {
      message.control.close();
    } else {
      const link = new StageWorkerLink(message.threadId, message.control);
      this.links.set(message.threadId, link);
      message.control.once('close', () => {
        if (this.links.get(link.threadId) === link) this.links.delete(link.threadId);
      });
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
