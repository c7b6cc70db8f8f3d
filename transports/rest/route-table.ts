/**
 * The REST route table: (HTTP method, path pattern, handler) entries, matched in one place.
 * Protocol modules declare their routes (mindspore-routes.ts, probe-routes.ts,
 * kserve-routes.ts) and the server (server.ts) asks `match(method, path)` once per request:
 *
 *   1. the resource: an exact path (one Map lookup), else the first pattern (in registration
 *      order) that owns the path and has a route for the method, else the first that owns it
 *      (a `fallback` pattern only when none before it owns the path); none → 404 listing what
 *      is served
 *   2. the HTTP method among that resource's routes; none → 405 with `Allow`
 *   3. the path's parameters (pattern.parse); malformed → 400 with the pattern's reason
 *
 * Routes whose patterns have the same text form one resource: their methods make its `Allow`.
 * Messages that do not depend on the request (405s, the 404 list) are built when routes are
 * added, so a refusal costs no more than a match.
 */
import type { CancelSignal } from '../../engine/cancellation.js';
import type { ServingEngine } from '../../facade/engine.js';
import type { CodecSet, ReplyEncoder, RequestDecoder } from './codec.js';
import type { Reply, StreamedReply } from './exchange.js';
import { preview } from './parsed-value.js';
import { PathError, type PathPattern } from './path-pattern.js';

/** Lowercase, as uWS reports it. */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A route answered from the request line alone (probes); a body, if sent, is not read. */
export interface NoBodyRoute<P> {
  readonly method: HttpMethod;
  readonly path: PathPattern<P>;
  readonly codecs?: undefined;
  answer(engine: ServingEngine, params: P): Reply;
}

/** What a BodyRoute's handler gets: the server read the body and chose the codecs. */
export interface BodyRequest<P> {
  readonly params: P;
  readonly body: Uint8Array;
  /** Chosen by the request's `Content-Type` among the route's codecs. */
  readonly decoder: RequestDecoder;
  /** Chosen by the request's `Accept`; framing errors (413, 408, bad headers) used it too. */
  readonly encoder: ReplyEncoder;
  /** The client's X-Request-Id, or a generated one; the reply carries it back. */
  readonly requestId: string;
  /** From X-Deadline-Ms; undefined: the servable's default. */
  readonly deadlineMs: number | undefined;
  /** Aborted when the client goes away before the reply. */
  readonly signal: CancelSignal;
  /** The headers the route named in `headers` ('' when absent), by their lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * A route that takes a request body. Before calling `answer`, the server picks the codecs
 * (codec.ts), checks X-Deadline-Ms and Content-Length, and reads the body within the limits.
 */
export interface BodyRoute<P> {
  readonly method: HttpMethod;
  readonly path: PathPattern<P>;
  readonly codecs: CodecSet;
  /**
   * Further request headers the handler reads (lowercase names; KServe v2's binary extension
   * needs `inference-header-content-length`). uWS's request object is gone once the body
   * arrives, so the server copies them first.
   */
  readonly headers?: readonly string[];
  /**
   * A request's problems are replies; a rejection is a bug (answered 500). A StreamedReply
   * (Server-Sent Events) is sent chunk by chunk as its chunks are made.
   */
  answer(engine: ServingEngine, request: BodyRequest<P>): Promise<Reply | StreamedReply>;
}

export type Route<P> = NoBodyRoute<P> | BodyRoute<P>;

/** A request the table answers itself. */
export interface RouteRefusal {
  readonly kind: 'refused';
  readonly status: 400 | 404 | 405;
  readonly message: string;
  /** With 405: the methods the path answers (`GET`, `GET, POST`). */
  readonly allow?: string;
  /** The JSON body, when the path's pattern has its own error format (PathPattern.encodeError). */
  readonly body?: string;
}

export type RouteMatch = { readonly kind: 'route'; readonly route: Route<unknown>; readonly params: unknown } | RouteRefusal;

interface Resource {
  readonly path: PathPattern<unknown>;
  readonly routes: Map<string, Route<unknown>>;
  wrongMethod: RouteRefusal;
}

export class RouteTable {
  private readonly exact = new Map<string, Resource>();
  private readonly patterns: Resource[] = [];
  /** In registration order, for the 404 list. */
  private readonly all: Route<unknown>[] = [];
  private usage = '';

  constructor(routes: readonly Route<unknown>[] = []) {
    this.add(...routes);
  }

  /** Adds routes; a (method, pattern text) pair already in the table is an error. */
  add(...routes: readonly Route<unknown>[]): this {
    for (const route of routes) {
      const text = route.path.text;
      const resource = this.resourceOf(route.path);
      if (resource.routes.has(route.method)) throw new Error(`REST route ${route.method.toUpperCase()} ${text} is declared twice`);
      resource.routes.set(route.method, route);
      const allow = [...resource.routes.keys()].map((m) => m.toUpperCase()).join(', ');
      const message = resource.path.wrongMethod?.(allow) ?? `${text} only answers ${allow}`;
      const body = resource.path.encodeError?.(message);
      resource.wrongMethod = { kind: 'refused', status: 405, message, allow, ...(body !== undefined ? { body } : {}) };
      this.all.push(route);
    }
    this.usage = usageOf(this.all);
    return this;
  }

  /** `method` is lowercase (as uWS reports it); `path` is the URL path without the query string. */
  match(method: string, path: string): RouteMatch {
    let resource = this.exact.get(path);
    if (resource === undefined) {
      // The first pattern that owns the path and answers the method; when none answers it,
      // the first owner's 405. Two protocols may so share a path space by method: GET
      // /model/<servable> is metadata while every POST under /model is predict.
      let owner: Resource | undefined;
      for (const r of this.patterns) {
        if (!r.path.owns(path)) continue;
        if (r.path.fallback === true && owner !== undefined) break;
        owner ??= r;
        if (r.routes.has(method)) {
          resource = r;
          break;
        }
      }
      if (owner === undefined) return { kind: 'refused', status: 404, message: `there is nothing at ${preview(path, 80)}; ${this.usage}` };
      resource ??= owner;
    }
    const route = resource.routes.get(method);
    if (route === undefined) return resource.wrongMethod;
    const params = resource.path.parse(path);
    if (params instanceof PathError) {
      const body = resource.path.encodeError?.(params.message);
      return { kind: 'refused', status: 400, message: params.message, ...(body !== undefined ? { body } : {}) };
    }
    return { kind: 'route', route, params };
  }

  private resourceOf(path: PathPattern<unknown>): Resource {
    const found = path.exact !== undefined ? this.exact.get(path.exact) : this.patterns.find((r) => r.path.text === path.text);
    if (found) return found;
    const resource: Resource = { path, routes: new Map(), wrongMethod: { kind: 'refused', status: 405, message: '' } };
    if (path.exact !== undefined) this.exact.set(path.exact, resource);
    else this.patterns.push(resource);
    return resource;
  }
}

/** "use POST /a, or GET /b, /c": the routes grouped by method, in the order they were added. */
function usageOf(routes: readonly Route<unknown>[]): string {
  const byMethod = new Map<string, string[]>();
  for (const r of routes) {
    if (r.path.fallback === true) continue; // a catch-all serves nothing to list
    const texts = byMethod.get(r.method) ?? [];
    texts.push(r.path.text);
    byMethod.set(r.method, texts);
  }
  return `use ${[...byMethod].map(([method, texts]) => `${method.toUpperCase()} ${texts.join(', ')}`).join(', or ')}`;
}
