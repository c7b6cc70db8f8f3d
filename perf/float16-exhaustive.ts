/**
 * An exhaustive check, too slow for the test suite (minutes): float32 → float16 over all 2^32
 * float32 bit patterns, native (F16C or scalar path) against the plain-JS converter.
 *
 *   npm run build && node dist/perf/float16-exhaustive.js
 *   ACTORSERVE_NATIVE_NO_SIMD=1 node dist/perf/float16-exhaustive.js   # the scalar C++ path
 */
import { float32ToFloat16, js, nativeLoaded } from '../native/index.js';

if (!nativeLoaded) {
  process.stderr.write('the native addon is not loaded; build it with npm install\n');
  process.exit(1);
}
const chunk = 1 << 24;
const bits = new Uint32Array(chunk);
const src = new Float32Array(bits.buffer);
const a = new Uint16Array(chunk);
const b = new Uint16Array(chunk);
let diff = 0;
for (let start = 0; start < 2 ** 32; start += chunk) {
  for (let i = 0; i < chunk; i++) bits[i] = start + i;
  float32ToFloat16(src, a);
  js.float32ToFloat16(src, b);
  for (let i = 0; i < chunk; i++) if (a[i] !== b[i]) diff++;
}
process.stdout.write(`${diff === 0 ? 'OK' : 'MISMATCH'}: ${diff} of 2^32 float32 patterns differ between native and JS\n`);
process.exit(diff === 0 ? 0 : 1);
