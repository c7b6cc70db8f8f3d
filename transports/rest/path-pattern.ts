/**
 * Path patterns for the route table (route-table.ts). A pattern answers two questions, in this
 * order, so that a wrong HTTP method is reported before a malformed path:
 *
 *   owns(path)   is this path in the pattern's space? (cheap: no allocation on a miss)
 *   parse(path)  its parameters, or a PathError (answered 400) when the path is malformed
 *
 * `exactPath('/healthz')` and `pathTemplate('/v2/models/{name}/infer')` cover ordinary REST
 * paths; a protocol with irregular URLs (MindSpore's `/model/<servable>:<method>`, see
 * mindspore-routes.ts) implements PathPattern itself. Everything is prepared when the pattern
 * is made; matching compiles nothing.
 */
import { preview } from './parsed-value.js';

export interface PathPattern<P> {
  /** How the pattern reads in messages (404 lists, 405): `/healthz`, `/model/<servable>:<method>`. */
  readonly text: string;
  /** Set when the pattern is one fixed path: the table finds it with one Map lookup. */
  readonly exact?: string;
  /** Whether `path` (without the query string) belongs to this pattern. */
  owns(path: string): boolean;
  /** The parameters of a path this pattern owns, or why it is malformed (a 400). */
  parse(path: string): P | PathError;
  /** The 405 message for a path it owns, given the `Allow` list (default: "<text> only answers <allow>"). */
  wrongMethod?(allow: string): string;
  /**
   * The JSON body of the table's refusals (405, 400) for paths it owns, in its protocol's error
   * format (default: MindSpore's `{"error_msg": ...}`; KServe v2 writes `{"error": ...}`).
   */
  encodeError?(message: string): string;
  /**
   * A protocol's catch-all (KServe v2's `/v2/...` 404): consulted only for a path that no
   * pattern before it owns, so the patterns it covers keep their own 405s.
   */
  readonly fallback?: boolean;
}

/** A path in a pattern's space that cannot be read: the table answers 400 with `message`. */
export class PathError {
  constructor(readonly message: string) {}
}

const NO_PARAMS: Readonly<Record<string, never>> = Object.freeze({});

/** One fixed path, no parameters. */
export function exactPath(path: string): PathPattern<Readonly<Record<string, never>>> {
  return {
    text: path,
    exact: path,
    owns: (p) => p === path,
    parse: () => NO_PARAMS,
  };
}

/** `{name}` segments of a template, as a parameter object type: `{ name: string }`. */
export type TemplateParams<T extends string> = T extends `${string}{${infer Name}}${infer Rest}`
  ? { readonly [K in Name | keyof TemplateParams<Rest>]: string }
  : Readonly<Record<never, string>>;

/**
 * A path of literal segments and `{param}` segments, e.g. `/v2/models/{name}/versions/{version}/infer`.
 * A parameter is one whole, non-empty segment; its value is percent-decoded (an invalid
 * encoding is a 400). The template must start with `/`; literal segments match exactly.
 */
export function pathTemplate<T extends string>(template: T): PathPattern<TemplateParams<T>> {
  if (!template.startsWith('/')) throw new Error(`path template ${JSON.stringify(template)} must start with '/'`);
  // literal segments keep their leading '/', so one startsWith matches the separator too
  const parts = template
    .slice(1)
    .split('/')
    .map((s): { literal: string } | { param: string } => {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
      if (m) return { param: m[1]! };
      if (s.includes('{') || s.includes('}')) throw new Error(`path template ${JSON.stringify(template)}: a {param} must be a whole segment`);
      return { literal: `/${s}` };
    });

  /** Walks the path; calls `found` with each parameter's raw text. False when it does not match. */
  const walk = (path: string, found?: (name: string, raw: string) => void): boolean => {
    let at = 0;
    for (const part of parts) {
      if ('literal' in part) {
        if (!path.startsWith(part.literal, at)) return false;
        at += part.literal.length;
        continue;
      }
      if (path.charCodeAt(at) !== 0x2f /* / */) return false;
      let end = path.indexOf('/', at + 1);
      if (end < 0) end = path.length;
      if (end === at + 1) return false; // empty segment
      found?.(part.param, path.slice(at + 1, end));
      at = end;
    }
    return at === path.length;
  };

  return {
    text: template,
    owns: (path) => walk(path),
    parse: (path) => {
      const params: Record<string, string> = {};
      let bad: string | undefined;
      walk(path, (name, raw) => {
        try {
          params[name] = decodeURIComponent(raw);
        } catch {
          bad ??= name;
        }
      });
      if (bad !== undefined) return new PathError(`bad URL ${preview(path, 80)}: {${bad}} holds an invalid percent-encoding`);
      return params as TemplateParams<T>;
    },
  };
}
