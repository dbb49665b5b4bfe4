/**
 * How the hub ends the streams it holds, each with a `retry` hint so its client comes back: at
 * shutdown (all at once, or spread over `spreadMs` so the clients do not all return in the same
 * instant), and when the backplane's history was replaced (`reset`).
 *
 *   close({ spreadMs }) ──endSpread()──▶ ≤ 50 even steps, each ending its share, jittered retry
 *                       ──endAll()─────▶ every stream left, retry = closeRetryMs
 *
 * Invariant: a stream ends once (`Subscriber.close` is idempotent), and the set being ended is
 * copied first, since ending one removes it from the hub's set.
 */
import { encodeRetry } from "./encoder.ts";
import type { Subscriber } from "./subscriber.ts";

/** Options of `Hub.close`. */
export interface CloseOptions {
  /**
   * Spread the ending of the open streams over this many ms instead of ending them at once, so
   * their clients do not all come back in the same instant; each also gets its `retry` hint
   * with up to as much again of random jitter. Default 0: all at once, no jitter.
   */
  readonly spreadMs?: number | undefined;
}

/** Ends every stream now, each told to come back after `retryMs`. */
export function endAll(
  subscribers: Iterable<Subscriber>,
  reason: "shutdown" | "reset",
  retryMs: number,
): void {
  const retry = encodeRetry(retryMs);
  for (const subscriber of [...subscribers]) subscriber.close(reason, retry);
}

/**
 * Ends the streams open now in even steps over `spreadMs` (at most 50, the first at once): at
 * each step, as many as the time elapsed calls for. Each gets a retry hint of `retryMs` plus up to as much again of jitter, so
 * the reconnections spread out too.
 */
export async function endSpread(
  subscribers: Iterable<Subscriber>,
  spreadMs: number,
  retryMs: number,
): Promise<void> {
  const open = [...subscribers];
  const steps = Math.min(open.length, 50);
  const started = Date.now();
  let done = 0;
  // Step k of n starts at (k - 1)/n of the window: the first share ends at once, and a hub with
  // few streams (or none) is done long before the window is over.
  for (let step = 1; step <= steps; step++) {
    const at = started + (spreadMs * (step - 1)) / steps;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
    const upTo = Math.round((open.length * step) / steps);
    for (; done < upTo; done++) {
      const jitter = Math.floor(Math.random() * (retryMs + 1));
      (open[done] as Subscriber).close("shutdown", encodeRetry(retryMs + jitter));
    }
  }
}
