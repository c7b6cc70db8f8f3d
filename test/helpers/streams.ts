/**
 * Streaming transport tests' set-up: a servable `streamer` (no model) and a Server-Sent Events
 * client on node:http that reads events as they arrive.
 *
 * `streamer`'s methods (one stage thread, so the counters see every generator):
 *  - `echo(x) -> y` and `generate(text_input) -> text_output` (the text upper-cased): plain
 *    function stages, so a stream has one event per instance;
 *  - `fail(x) -> y`: throws when x is the string "boom", else echoes;
 *  - `tokens(text_input) -> text_output`: streams `max_tokens` pieces (default 5) `<text>0 `,
 *    `<text>1 `... each padded with dots to `size` bytes when given, `delay_ms` apart, and fails
 *    after `fail_after` pieces when given; `parameters` yields the request's parameters as JSON;
 *  - `counters(x) -> c`: [pieces yielded, generators finished, the last one saw its signal aborted].
 */
import http from 'node:http';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { type FixtureEngine, servableFixture, startFixtureEngine } from './fixtures.js';

export const STREAMER_CONFIG = `import { register, stringTensor, tensorStrings, type StreamContext, type Tensor } from 'actorserve';
const state = { yielded: 0, cleaned: 0, aborted: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export async function* pieces(text: Tensor, ctx: StreamContext) {
  const p = ctx.parameters;
  const prefix = tensorStrings(text).join('');
  try {
    for (let i = 0; i < Number(p.max_tokens ?? 5); i++) {
      if (p.fail_after !== undefined && i === Number(p.fail_after)) throw new Error('failed after ' + i + ' pieces');
      if (p.delay_ms) await sleep(Number(p.delay_ms));
      state.yielded++;
      const piece = prefix + i + ' ';
      yield p.size ? piece.padEnd(Number(p.size), '.') : piece;
    }
  } finally {
    state.cleaned++;
    state.aborted = ctx.signal.aborted;
  }
}
export async function* showParameters(_x: Tensor, ctx: StreamContext) {
  yield JSON.stringify(ctx.parameters);
}
export function counters(_x: Tensor) {
  return Float64Array.of(state.yielded, state.cleaned, state.aborted ? 1 : 0);
}
export function echo(x: Tensor): Tensor {
  return x;
}
export function shout(text: Tensor): Tensor {
  return stringTensor(tensorStrings(text).join('').toUpperCase());
}
export function maybeFail(x: Tensor): Tensor {
  if (x.dtype === 'string' && tensorStrings(x)[0] === 'boom') throw new Error('boom was asked for');
  return x;
}
register.method('echo', { outputs: ['y'] }, (x) => register.addStage(echo, [x]));
register.method('generate', { outputs: ['text_output'] }, (text_input) => register.addStage(shout, [text_input]));
register.method('fail', { outputs: ['y'] }, (x) => register.addStage(maybeFail, [x]));
register.method('tokens', { outputs: ['text_output'] }, (text_input) => register.addStage(pieces, [text_input], { stream: true }));
register.method('parameters', { outputs: ['text_output'] }, (text_input) => register.addStage(showParameters, [text_input], { stream: true }));
register.method('counters', { outputs: ['c'] }, (x) => register.addStage(counters, [x]));
`;

export interface StreamEngine extends FixtureEngine {
  /** The generators' counters (the `counters` method). */
  counters(): Promise<Counters>;
  /** Polls the counters until `done` holds (bounded: 150 polls, 20 ms apart); the last counters. */
  until(done: (c: Counters) => boolean): Promise<Counters>;
}

export interface Counters {
  /** Pieces the generators yielded, in all. */
  readonly yielded: number;
  /** Generators that finished (ended, failed or were stopped). */
  readonly cleaned: number;
  /** The last one to finish saw its signal aborted (it was stopped). */
  readonly aborted: boolean;
}

export async function startStreamEngine(name: string): Promise<StreamEngine> {
  const fx = servableFixture(name);
  fx.config('streamer', STREAMER_CONFIG);
  const started = await startFixtureEngine(fx, [new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'streamer', numParallelWorkers: 1 })]);
  const counters = async (): Promise<Counters> => {
    const [out] = await started.engine.infer('streamer', 'counters', [{ x: { dtype: 'float32', shape: [1], data: Float32Array.of(0) } }]);
    const c = out!['c']!.data as Float64Array;
    return { yielded: c[0]!, cleaned: c[1]!, aborted: c[2] === 1 };
  };
  return {
    ...started,
    counters,
    async until(done) {
      let c = await counters();
      for (let i = 0; i < 150 && !done(c); i++) {
        await new Promise((r) => setTimeout(r, 20));
        c = await counters();
      }
      return c;
    },
  };
}

export interface SseEvent {
  /** The `event:` field; 'message' when the event has none. */
  readonly event: string;
  readonly data: string;
}

export interface SseResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly res: http.IncomingMessage;
  /** The events as they arrive; ends when the response ends. */
  readonly events: AsyncGenerator<SseEvent, void, undefined>;
  /** The whole body, for a reply that is not SSE. */
  text(): Promise<string>;
  /** Cuts the connection (a client that goes away). */
  destroy(): void;
}

/** POSTs `body` with Accept: text/event-stream; resolves once the response headers arrived. */
export function postSse(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<SseResponse> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers } },
      (res) => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          res,
          events: readEvents(res),
          async text() {
            let s = '';
            for await (const chunk of res) s += String(chunk);
            return s;
          },
          destroy: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Reads every event of a response (the stream must end). */
export async function allEvents(r: SseResponse): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of r.events) out.push(e);
  return out;
}

async function* readEvents(res: http.IncomingMessage): AsyncGenerator<SseEvent, void, undefined> {
  res.setEncoding('utf8');
  let buffered = '';
  for await (const chunk of res as AsyncIterable<string>) {
    buffered += chunk;
    for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      yield { event, data: data.join('\n') };
    }
  }
  if (buffered.trim() !== '') throw new Error(`the stream ended inside an event: ${JSON.stringify(buffered)}`);
}
