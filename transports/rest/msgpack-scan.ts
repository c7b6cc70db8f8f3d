/**
 * A structural check of an untrusted msgpack body before msgpackr decodes it, in one linear
 * pass that allocates nothing:
 *  - exactly one value, with no bytes left over;
 *  - nesting at most `maxDepth` deep (msgpackr recurses, and overflows the stack otherwise);
 *  - every announced length fits in the bytes that are left (no huge pre-allocations);
 *  - ext types: only msgpackr's typed-array extension (0x74); records, bundled strings,
 *    structured-clone references and the rest are refused, so no decoder state comes from a peer;
 *  - no "__proto__" map key (msgpackr would silently rename it).
 */
import { badRequest } from './parsed-value.js';

/** msgpackr's extension type for typed arrays (`moreTypes: true`). */
export const TYPED_ARRAY_EXT = 0x74;

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

export function scanMsgpack(b: Uint8Array, maxDepth: number): void {
  const n = b.length;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  // one frame per open container: elements left, and whether it is a map (keys at even counts)
  const left: number[] = [];
  const isMap: boolean[] = [];
  let pos = 0;
  let remaining = 1;
  let inMap = false;

  const fail = (what: string): never => {
    throw badRequest(`the msgpack body is malformed: ${what} (at byte ${pos})`);
  };
  const need = (k: number): void => {
    if (pos + k > n) fail('it ends in the middle of a value');
  };
  const u8 = (at: number): number => b[at]!;
  const u16 = (at: number): number => dv.getUint16(at);
  const u32 = (at: number): number => dv.getUint32(at);

  for (;;) {
    if (remaining === 0) {
      if (left.length === 0) break;
      remaining = left.pop()!;
      inMap = isMap.pop()!;
      continue;
    }
    remaining--;
    need(1);
    const c = u8(pos);
    let count = -1; // container element count, when a container opens
    let map = false;
    if (c <= 0x7f || c >= 0xe0) pos += 1; // fixint
    else if (c <= 0x8f) { count = (c & 0x0f) * 2; map = true; pos += 1; }
    else if (c <= 0x9f) { count = c & 0x0f; pos += 1; }
    else if (c <= 0xbf) { skipStr(1, c & 0x1f); }
    else switch (c) {
      case 0xc0: case 0xc2: case 0xc3: pos += 1; break; // nil, false, true
      case 0xc4: need(2); skip(2, u8(pos + 1)); break; // bin 8
      case 0xc5: need(3); skip(3, u16(pos + 1)); break;
      case 0xc6: need(5); skip(5, u32(pos + 1)); break;
      case 0xc7: need(3); ext(u8(pos + 2), 3, u8(pos + 1)); break; // ext 8
      case 0xc8: need(4); ext(u8(pos + 3), 4, u16(pos + 1)); break;
      case 0xc9: need(6); ext(u8(pos + 5), 6, u32(pos + 1)); break;
      case 0xca: skip(1, 4); break; // float 32
      case 0xcb: skip(1, 8); break;
      case 0xcc: case 0xd0: skip(1, 1); break; // (u)int 8
      case 0xcd: case 0xd1: skip(1, 2); break;
      case 0xce: case 0xd2: skip(1, 4); break;
      case 0xcf: case 0xd3: skip(1, 8); break;
      case 0xd4: need(2); ext(u8(pos + 1), 2, 1); break; // fixext 1
      case 0xd5: need(2); ext(u8(pos + 1), 2, 2); break;
      case 0xd6: need(2); ext(u8(pos + 1), 2, 4); break;
      case 0xd7: need(2); ext(u8(pos + 1), 2, 8); break;
      case 0xd8: need(2); ext(u8(pos + 1), 2, 16); break;
      case 0xd9: need(2); skipStr(2, u8(pos + 1)); break; // str 8
      case 0xda: need(3); skipStr(3, u16(pos + 1)); break;
      case 0xdb: need(5); skipStr(5, u32(pos + 1)); break;
      case 0xdc: need(3); count = u16(pos + 1); pos += 3; break; // array 16
      case 0xdd: need(5); count = u32(pos + 1); pos += 5; break;
      case 0xde: need(3); count = u16(pos + 1) * 2; map = true; pos += 3; break; // map 16
      case 0xdf: need(5); count = u32(pos + 1) * 2; map = true; pos += 5; break;
      default: fail(`byte 0x${c.toString(16)} starts no msgpack value`);
    }
    if (count >= 0) {
      if (count > n - pos) fail(`${map ? 'a map' : 'an array'} announces ${map ? count / 2 : count} entries but only ${n - pos} bytes follow`);
      if (left.length + 1 > maxDepth) fail(`arrays/maps nest deeper than ${maxDepth} levels`);
      left.push(remaining);
      isMap.push(inMap);
      remaining = count;
      inMap = map;
    }
  }
  if (pos !== n) fail(`${n - pos} bytes follow the end of the value`);

  function skip(header: number, len: number): void {
    need(header + len);
    pos += header + len;
  }
  function skipStr(header: number, len: number): void {
    need(header + len);
    if (isKeyNow() && len === 9 && PROTO.every((p, k) => b[pos + header + k] === p)) {
      throw badRequest('the msgpack body has a "__proto__" map key, which is not allowed');
    }
    pos += header + len;
  }
  function isKeyNow(): boolean {
    // called while reading the current element: `remaining` was already decremented
    return inMap && (remaining + 1) % 2 === 0;
  }
  function ext(type: number, header: number, len: number): void {
    if (type !== TYPED_ARRAY_EXT) fail(`msgpack extension type ${(type << 24) >> 24} is not accepted (only msgpackr typed arrays, type ${TYPED_ARRAY_EXT})`);
    skip(header, len);
  }
}
