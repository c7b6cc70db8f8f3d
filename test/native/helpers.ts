/** Shared bits of the native/ tests: a seeded PRNG and a canonical text form of parse results. */
import type { ParsedRequest } from '../../dist/native/index.js';

/** mulberry32 (servables/onnx-builder.ts): small, fast, deterministic. */
export { mulberry32 as prng } from '../../dist/servables/onnx-builder.js';

const enc = new TextEncoder();
export const bytes = (s: string): Uint8Array => enc.encode(s);

function num(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

/**
 * A canonical string of a parse outcome: result (key order, typed-array kinds, -0 and the
 * null prototype included) or error (class, code, position, message).
 */
export function outcome(parse: (b: Uint8Array) => ParsedRequest, body: Uint8Array): string {
  let r: ParsedRequest;
  try {
    r = parse(body);
  } catch (e) {
    const err = e as Error & { code?: string; position?: number };
    return `ERR ${err.constructor.name} ${err.code} @${err.position} ${err.message}`;
  }
  const parts: string[] = [`single=${r.single} n=${r.instances.length}`];
  r.instances.forEach((inst, k) => {
    parts.push(`#${k} proto=${Object.getPrototypeOf(inst) === null ? 'null' : 'object'}`);
    for (const [name, v] of Object.entries(inst)) {
      const fields = Object.keys(v).join(',');
      let data: string;
      if (v.kind === 'numbers') data = `${v.data.constructor.name}[${Array.from(v.data, num).join(',')}] int=${v.integers}`;
      else if (v.kind === 'bools') data = `${v.data.constructor.name}[${Array.from(v.data).join(',')}]`;
      else if (v.kind === 'strings') data = JSON.stringify(v.data);
      else data = `${JSON.stringify(v.b64)} type=${JSON.stringify(v.type)} shape=${JSON.stringify(v.shape)}`;
      const shape = v.kind === 'b64' ? '' : `[${v.shape.join(',')}]`;
      parts.push(`  ${JSON.stringify(name)}: ${v.kind}${shape} {${fields}} ${data}`);
    }
  });
  return parts.join('\n');
}
