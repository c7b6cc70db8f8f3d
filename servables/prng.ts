// A tiny deterministic PRNG shared by the model generators (seeded weights) and the tiny_lm
// servable's sampler (seeded top-k/top-p). No imports: servable configs load it cheaply.

/**
 * mulberry32: a tiny, fast 32-bit PRNG. Returns a function yielding floats in [0, 1); the same
 * seed always yields the same sequence (used for deterministic weights).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
