/** Polling waits for shutdown paths (drain), where an event per request would cost the hot path. */

/** Resolves once `done()` holds or `performance.now()` passes `deadline`, checking every `stepMs`. */
export async function waitUntil(done: () => boolean, deadline: number, stepMs = 10): Promise<void> {
  while (!done() && performance.now() < deadline) await new Promise((r) => setTimeout(r, stepMs));
}
