/**
 * Streaming transport tests' set-up: a servable `streamer` (no model) and a Server-Sent Events
 * client on node:http that reads events as they arrive.
 *
 * `streamer`'s methods:
 *  - `echo(x) -> y` and `generate(text_input) -> text_output` (the text upper-cased): plain
 *    function stages, so a stream has one event per instance;
 *  - `fail(x) -> y`: throws when x is the string "boom", else echoes.
 */
import http from 'node:http';
import { ServingServer } from '../../dist/server.js';
import { ServableStartConfig } from '../../dist/engine/start-config.js';
import { type ServableFixture, servableFixture } from './fixtures.js';

export const STREAMER_CONFIG = `import { register, stringTensor, tensorStrings, type Tensor } from 'actorserve';
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
`;

export interface StreamEngine {
  readonly engine: ServingServer;
  readonly fx: ServableFixture;
  stop(): Promise<void>;
}

export async function startStreamEngine(name: string): Promise<StreamEngine> {
  const fx = servableFixture(name);
  fx.config('streamer', STREAMER_CONFIG);
  const engine = new ServingServer();
  engine.log = () => {};
  try {
    await engine.startServables([new ServableStartConfig({ servableDirectory: fx.dir, servableName: 'streamer', numParallelWorkers: 2 })]);
  } catch (err) {
    fx.remove();
    throw err;
  }
  return {
    engine,
    fx,
    async stop() {
      await engine.stop();
      fx.remove();
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
