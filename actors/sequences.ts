/**
 * The supervisor's side of stateful sequences (docs/sequences.md): which sequences of a
 * stateful model are live, which device actor holds each one's state (sequence affinity: the
 * actor that ran its start), and when a state is freed. The state itself never leaves its
 * device actor; the supervisor only names it, by a handle unique over the process's life, in
 * the rows of each batch (protocol.ts, SequenceRow).
 *
 * A sequence is live from its start request until its end request is admitted, or until it
 * has been idle (no request admitted or running) for the model's idleTimeoutMs, or until it is
 * lost (its start failed before the model ran, or its device actor died). A state is freed on
 * the actor by the end row itself, or by a `dropSequences` control call once nothing of the
 * sequence is queued or running.
 */
import { readFile } from 'node:fs/promises';
import { ServingError } from '../engine/errors.js';
import { readNpy } from '../engine/npy.js';
import type { LoadedStateDeclaration, SequenceDeclaration } from '../engine/sequence.js';
import { checkSequenceRequest, sequenceLabel } from '../engine/sequence.js';
import type { Device } from './device.js';

let nextHandle = 1;

export class Sequence {
  /** Names the state in batch rows; never reused. */
  readonly handle = nextHandle++;
  /** The device actor that ran the start and holds the state; unset until the start is sent. */
  device: Device | undefined;
  /** Requests admitted for it and not answered yet. */
  requests = 0;
  /** Batches holding a row of it, sent and not answered yet. */
  inflight = 0;
  /** A batch with its start row was sent. */
  startSent = false;
  /** A batch with its end row was sent (the actor frees the state after it). */
  endSent = false;
  /** The end request was admitted: no request may continue it. */
  ended = false;
  /** Why it cannot go on: its steps still queued are answered with this. */
  lost: ServingError | undefined;
  /** Freed, or asked to be freed, on its device: final. */
  released = false;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly key: string,
    readonly id: string | number,
    readonly registry: SequenceRegistry,
  ) {}

  get label(): string {
    return `sequence ${sequenceLabel(this.id)}`;
  }
}

/** One step of a sequence: what a queued instance of a stateful model carries. */
export interface SequenceStep {
  readonly sequence: Sequence;
  readonly start: boolean;
  readonly end: boolean;
}

/** The steps of one request for one stateful model (the first instance starts, the last ends). */
export interface SequenceAdmission {
  readonly sequence: Sequence;
  readonly start: boolean;
  readonly end: boolean;
}

/** How refusals name the start and end flags, for a request and for a stage function's model.call. */
const REQUEST_WORDS = { start: 'send sequence_start with its first request', end: 'sequence_end' };
const CALL_WORDS = { start: 'call with start: true first', end: 'end: true or model.endSequence' };

/** The live sequences of one stateful model of one servable version. */
export class SequenceRegistry {
  private readonly live = new Map<string, Sequence>();
  /** Sequences dropped because they were idle for idleTimeoutMs (a counter for metrics). */
  expired = 0;
  /** Sequences started (a counter for metrics). */
  started = 0;

  constructor(
    /** The model's index in the servable (what `dropSequences` names). */
    readonly model: number,
    /** How messages name the model. */
    readonly tag: string,
    private readonly declaration: SequenceDeclaration,
  ) {}

  /** Live sequences: started, not ended, not expired or lost. */
  get size(): number {
    return this.live.size;
  }

  /**
   * Admits a request's sequence options: a start opens a new sequence (refused while one of
   * that id is live), anything else continues a live one (refused when there is none). An end
   * closes the id at once: a later request of the same id needs a new start. `from` words the
   * refusals for who sent the step: a request (sequence_start, sequence_end) or a stage
   * function's `model.call` (start: true, end: true).
   */
  admit(options: unknown, from: 'request' | 'call' = 'request'): SequenceAdmission {
    const words = from === 'call' ? CALL_WORDS : REQUEST_WORDS;
    const { key, id, start, end } = checkSequenceRequest(options);
    let sequence = this.live.get(key);
    if (start) {
      if (sequence) {
        throw new ServingError(
          'E_INVALID_ARGUMENT',
          `${sequence.label} of ${this.tag} is already live; a second start is refused (end it with ${words.end}, or use another id)`,
        );
      }
      sequence = new Sequence(key, id, this);
      this.live.set(key, sequence);
      this.started++;
    } else if (!sequence) {
      throw new ServingError(
        'E_INVALID_ARGUMENT',
        `sequence ${sequenceLabel(id)} of ${this.tag} is not live (never started, ended, idle for more than ` +
          `${this.declaration.idleTimeoutMs} ms, or lost): ${words.start}`,
      );
    }
    sequence.requests++;
    clearTimeout(sequence.timer);
    sequence.timer = undefined;
    if (end) {
      sequence.ended = true;
      this.live.delete(key);
    }
    return { sequence, start, end };
  }

  /** A request admitted by `admit` was answered (whatever its outcome). */
  requestEnded(a: SequenceAdmission): void {
    const s = a.sequence;
    s.requests--;
    if (a.start && !s.startSent) this.lose(s, new ServingError('E_INVALID_ARGUMENT', `${s.label} of ${this.tag} was dropped: its start request ended before the model ran it`));
    this.settle(s);
  }

  /** A batch holding rows of these sequences was sent to `device`. */
  sent(steps: readonly SequenceStep[], device: Device): void {
    for (const { sequence: s, start, end } of steps) {
      s.device = device;
      s.inflight++;
      if (start) s.startSent = true;
      if (end) s.endSent = true;
    }
  }

  /** That batch was answered; `failed`: with an error (a start that failed leaves no state). */
  answered(steps: readonly SequenceStep[], failed: ServingError | undefined): void {
    for (const { sequence: s, start } of steps) {
      s.inflight--;
      if (failed && (start || failed.code === 'E_ACTOR_DIED')) {
        this.lose(s, new ServingError(failed.code === 'E_ACTOR_DIED' ? 'E_ACTOR_DIED' : 'E_INVALID_ARGUMENT', `${s.label} of ${this.tag} was lost (${failed.message}); start it again`));
      }
      this.settle(s);
    }
  }

  /** Marks a sequence as unable to go on; its id is free for a new start. */
  lose(s: Sequence, why: ServingError): void {
    s.lost ??= why;
    if (this.live.get(s.key) === s) this.live.delete(s.key);
  }

  /**
   * Ends a live sequence without a step (`model.endSequence`, or the end of the stage-function
   * instance that started it): its id is closed at once, its state freed once nothing of it is
   * admitted or running. A sequence that is no longer live (ended, expired, lost) is left alone.
   */
  close(s: Sequence): void {
    if (this.live.get(s.key) !== s) return;
    s.ended = true;
    this.live.delete(s.key);
    this.settle(s);
  }

  /** `close` by id (checked like a request's); an id that is not live is ignored. */
  closeId(id: string | number): void {
    const s = this.live.get(checkSequenceRequest({ id }).key);
    if (s) this.close(s);
  }

  /** Frees every sequence's state now (the servable version is stopping: its actors end anyway). */
  clear(): void {
    for (const s of this.live.values()) clearTimeout(s.timer);
    this.live.clear();
  }

  /** With nothing of it admitted or running: frees an ended or lost sequence, or arms its idle timer. */
  private settle(s: Sequence): void {
    if (s.released || s.requests > 0 || s.inflight > 0) return;
    if (s.ended || s.lost || !s.startSent) return this.release(s);
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (s.requests > 0 || s.inflight > 0 || s.released) return;
      this.expired++;
      this.lose(s, new ServingError('E_INVALID_ARGUMENT', `${s.label} of ${this.tag} expired after ${this.declaration.idleTimeoutMs} ms idle`));
      this.release(s);
    }, this.declaration.idleTimeoutMs);
    s.timer.unref();
  }

  private release(s: Sequence): void {
    s.released = true;
    clearTimeout(s.timer);
    if (this.live.get(s.key) === s) this.live.delete(s.key);
    // The end row frees the state itself; otherwise the holder is told (nothing of it is in flight).
    if (s.device && s.startSent && !s.endSent) void s.device.dropSequences?.(this.model, [s.handle]);
  }
}

/**
 * Reads the initial values of a stateful model's states that come from a file (`initial:
 * { file }`, a NumPy .npy file; `resolve` gives its path, as for model files), once at load:
 * the declarations carry them to the device actors. E_CONFIG_INVALID naming the state and the
 * file when it cannot be read or is not a .npy array (planStateGraphs checks its dtype and dims).
 */
export async function readStateInitials(key: string, state: readonly LoadedStateDeclaration[], resolve: (file: string) => string): Promise<LoadedStateDeclaration[]> {
  return Promise.all(
    state.map(async (s) => {
      if (s.initial === 'zeros') return s;
      const what = `model '${key}' state '${s.input}': initial file '${s.initial.file}'`;
      let bytes: Uint8Array;
      try {
        bytes = await readFile(resolve(s.initial.file));
      } catch (err) {
        const why = err instanceof ServingError ? err.message : ((err as NodeJS.ErrnoException).code ?? String(err));
        throw new ServingError('E_CONFIG_INVALID', `${what} cannot be read (${why})`, { cause: err });
      }
      try {
        const t = readNpy(bytes, what);
        return { ...s, value: { file: s.initial.file, dtype: t.dtype, shape: t.shape, data: t.data as NonNullable<LoadedStateDeclaration['value']>['data'] } };
      } catch (err) {
        throw new ServingError('E_CONFIG_INVALID', err instanceof Error ? err.message : String(err), { cause: err });
      }
    }),
  );
}
